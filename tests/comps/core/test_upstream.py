"""The one translation of a downstream answer into our errors (the table in comps.core.upstream)."""

from __future__ import annotations

import httpx
import pytest

from comps.core.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    Timeout,
    Unavailable,
    Unprocessable,
    UpstreamError,
)
from comps.core.upstream import envelope, in_band_error, status_error, transport_error


@pytest.mark.parametrize(
    ("status", "cls", "ours"),
    [
        (400, InvalidRequest, 400),
        (401, UpstreamError, 502),
        (403, UpstreamError, 502),
        (404, NotFound, 404),
        (408, Timeout, 504),
        (409, InvalidRequest, 409),
        (413, PayloadTooLarge, 413),
        (422, Unprocessable, 422),
        (429, Unavailable, 503),
        (500, UpstreamError, 502),
        (502, UpstreamError, 502),
        (503, Unavailable, 503),
        (504, Timeout, 504),
    ],
)
def test_every_status_maps_by_the_one_table(status: int, cls: type, ours: int) -> None:
    error = status_error("tts", httpx.Response(status), b'{"error": {"message": "nope"}}')
    assert type(error) is cls
    assert error.status == ours
    assert error.message.startswith(f"tts: nope (HTTP {status})")


def test_retry_after_is_the_downstreams_or_none() -> None:
    hinted = status_error("llm", httpx.Response(429, headers={"Retry-After": "7"}), b"")
    assert hinted.retry_after == 7.0
    assert status_error("llm", httpx.Response(503), b"").retry_after is None
    assert status_error("llm", httpx.Response(503, headers={"Retry-After": "soon"}), b"").retry_after is None


def test_a_4xx_keeps_the_downstream_code_and_param() -> None:
    body = b'{"error": {"message": "no speech", "type": "invalid_request", "code": "no_speech", "param": "audio"}}'
    error = status_error("asr", httpx.Response(400), body)
    assert (error.code, error.param) == ("no_speech", "audio")
    assert status_error("asr", httpx.Response(400), b"bad").code == "upstream_rejected"


def test_auth_failure_names_our_credential() -> None:
    error = status_error("llm upstream", httpx.Response(401), b'{"detail": "bad key"}', credential="LLM_API_KEY")
    assert error.code == "upstream_auth"
    assert error.message == "llm upstream: bad key (HTTP 401); check LLM_API_KEY"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "ours", "code": "c", "param": "p"}}', ("ours", "c", "p")),
        (b'{"error": "tgi style"}', ("tgi style", None, None)),
        (b'{"detail": "fastapi"}', ("fastapi", None, None)),
        (b"plain text", ("plain text", None, None)),
        (b"", (None, None, None)),
    ],
)
def test_envelope_reads_every_common_error_body(body: bytes, message: tuple[str | None, ...]) -> None:
    assert envelope(body) == message


def test_transport_failures() -> None:
    request = httpx.Request("POST", "http://asr:7066/v1/asr")
    refused = transport_error("asr", "http://asr:7066", httpx.ConnectError("refused", request=request))
    slow = transport_error("asr", "http://asr:7066", httpx.ReadTimeout("slow", request=request))
    broken = transport_error("asr", "http://asr:7066", httpx.RemoteProtocolError("eof", request=request))
    assert (type(refused), refused.code) == (Unavailable, "upstream_unreachable")
    assert type(slow) is Timeout
    assert type(broken) is UpstreamError


def test_in_band_errors_keep_our_category_and_make_others_upstream() -> None:
    kept = in_band_error("tts", {"message": "too long", "type": "invalid_request", "code": "text_too_long"})
    assert (type(kept), kept.message, kept.code) == (InvalidRequest, "tts: too long", "text_too_long")
    assert type(in_band_error("tts", {"message": "boom", "type": "internal"})) is UpstreamError
    assert type(in_band_error("llm", {"message": "x", "type": "server_error"})) is UpstreamError
    assert type(in_band_error("llm", "a bare string")) is UpstreamError
