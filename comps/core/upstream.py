"""The one translation of what a downstream hop did into our errors, always naming the failing stage.

Used by every caller of another HTTP service: the orchestrator's hops, the gateway's proxies, the
LLM service's OpenAI-compatible backend. The rules, for an answer with a non-2xx status:

| downstream status | our error |
|---|---|
| 401, 403 | 502 `upstream_auth`: our own credentials for that stage are wrong, not the caller's |
| 408, 504 | 504 timeout |
| 429, 503 | 503 unavailable, with the downstream's Retry-After when it sent one |
| 400, 404, 413, 422 | the same class and status: the caller's input was wrong for that stage |
| any other 4xx | 400-class invalid_request keeping its status |
| any other 5xx | 502 upstream |
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from comps.core.errors import (
    InternalError,
    ServiceError,
    Timeout,
    Unavailable,
    UpstreamError,
    class_for_status,
    error_class,
)

_MAX_MESSAGE = 300


def envelope(body: bytes | str) -> tuple[str | None, str | None, str | None]:
    """(message, code, param) of an error body: ours, OpenAI's, TGI's (`{"error": str}`), FastAPI's, or text."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return (text.strip()[:_MAX_MESSAGE] or None), None, None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return _text(error.get("message")), _text(error.get("code")), _text(error.get("param"))
        if error is not None:
            return str(error)[:_MAX_MESSAGE], None, None
        for key in ("detail", "message"):
            if data.get(key) is not None:
                return str(data[key])[:_MAX_MESSAGE], None, None
    return str(data)[:_MAX_MESSAGE], None, None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from services, and no better than our own backoff


def status_error(stage: str, response: httpx.Response, body: bytes | str, *, credential: str = "") -> ServiceError:
    """The error for a non-2xx answer from `stage` (the table in this module's docstring).

    `credential` names the setting holding our key for that stage, for the 401/403 message.
    """
    message, code, param = envelope(body)
    status = response.status_code
    text = f"{stage}: {message or response.reason_phrase or 'no detail'} (HTTP {status})"
    if status in (401, 403):
        key = credential or "the API key this service sends"
        return UpstreamError(f"{text}; check {key}", code="upstream_auth")
    if status in (408, 504):
        return Timeout(text, code=code or "upstream_timeout")
    if status in (429, 503):
        return Unavailable(text, code=code or "upstream_unavailable", retry_after=_retry_after(response.headers))
    if 400 <= status < 500:
        return class_for_status(status)(text, code=code or "upstream_rejected", param=param, status=status)
    return UpstreamError(text, code=code or "upstream_error")


def transport_error(stage: str, url: str, exc: httpx.HTTPError) -> ServiceError:
    """The error for a hop that never got an answer: unreachable is 503, a timeout 504, a broken reply 502."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Unavailable(f"{stage}: unreachable at {url}: {exc or type(exc).__name__}", code="upstream_unreachable")
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(f"{stage}: timed out at {url}: {type(exc).__name__}", code="upstream_timeout")
    return UpstreamError(f"{stage}: broken reply from {url}: {type(exc).__name__}: {exc}", code="upstream_error")


def deadline_error(stage: str, timeout_s: float) -> Timeout:
    """The error for a stage that did not finish within its timeout."""
    return Timeout(f"{stage}: no answer within {timeout_s:g} s", code="upstream_timeout")


def contract_error(stage: str, problem: str) -> UpstreamError:
    """A 2xx answer whose body does not match the stage's contract."""
    return UpstreamError(f"{stage}: answered with an unexpected body: {problem}", code="bad_upstream_body")


def in_band_error(stage: str, error: Any) -> ServiceError:
    """An error event inside a stream: our envelope's `error` object (its category kept), or anyone else's."""
    if not isinstance(error, dict):
        return UpstreamError(f"{stage}: stream failed: {error}", code="upstream_error")
    cls = error_class(str(error.get("type")))
    if cls is None or cls is InternalError:  # the stage's own failure is, for its caller, an upstream one
        cls = UpstreamError
    message = f"{stage}: {error.get('message') or 'stream failed'}"
    return cls(message, code=_text(error.get("code")) or "upstream_error", param=_text(error.get("param")))
