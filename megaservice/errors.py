"""Translate what a downstream hop did into our errors, always naming the failing stage."""

from __future__ import annotations

import json
from typing import Any

import httpx

from comps.core.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    Timeout,
    Unavailable,
    Unprocessable,
    UpstreamError,
)

# A downstream 4xx keeps its class: the caller's input was wrong for that stage.
_CLIENT_ERRORS: dict[int, type[ServiceError]] = {
    400: InvalidRequest,
    404: NotFound,
    413: PayloadTooLarge,
    422: Unprocessable,
}


def _envelope(body: bytes) -> tuple[str | None, str | None, str | None]:
    """(message, code, param) from our error envelope, or from a FastAPI/OpenAI-style body."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", "replace").strip()
        return (text[:300] or None), None, None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return error.get("message"), error.get("code"), error.get("param")
        if isinstance(error, str):
            return error, None, None
        detail = data.get("detail")
        if detail is not None:
            return str(detail)[:300], None, None
    return str(data)[:300], None, None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def status_error(stage: str, response: httpx.Response, body: bytes) -> ServiceError:
    """The error for a non-2xx answer from `stage`.

    4xx keeps its class (400, 404, 413, 422; 408 is a timeout; 429 is "busy"); 503 stays 503;
    504 stays 504; every other 5xx becomes 502.
    """
    message, code, param = _envelope(body)
    text = f"{stage}: {message or response.reason_phrase or 'no detail'} (HTTP {response.status_code})"
    status = response.status_code
    if status in (408, 504):
        return Timeout(text, code=code or "upstream_timeout")
    if status in (429, 503):
        return Unavailable(text, code=code or "upstream_unavailable", retry_after=_retry_after(response))
    if 400 <= status < 500:
        cls = _CLIENT_ERRORS.get(status, InvalidRequest)
        return cls(text, code=code, param=param, status=None if status in _CLIENT_ERRORS else status)
    return UpstreamError(text, code=code or "upstream_error")


def transport_error(stage: str, url: str, exc: httpx.HTTPError) -> ServiceError:
    """The error for a hop that never got an answer: unreachable is 503, a timeout 504, a broken reply 502."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Unavailable(f"{stage}: unreachable at {url}: {exc or type(exc).__name__}", code="upstream_unreachable")
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(f"{stage}: timed out at {url}: {type(exc).__name__}", code="upstream_timeout")
    return UpstreamError(f"{stage}: broken reply from {url}: {type(exc).__name__}: {exc}", code="upstream_error")


def deadline_error(stage: str, timeout_s: float) -> Timeout:
    """The error for a node that did not finish within its timeout."""
    return Timeout(f"{stage}: no answer within {timeout_s:g} s", code="upstream_timeout")


def contract_error(stage: str, problem: str) -> UpstreamError:
    """A 2xx answer whose body does not match the stage's contract."""
    return UpstreamError(f"{stage}: answered with an unexpected body: {problem}", code="bad_upstream_body")


_CATEGORIES: dict[str, type[ServiceError]] = {
    "invalid_request": InvalidRequest,
    "not_found": NotFound,
    "payload_too_large": PayloadTooLarge,
    "unprocessable": Unprocessable,
    "unavailable": Unavailable,
    "timeout": Timeout,
}


def in_band_error(stage: str, error: Any) -> ServiceError:
    """An error event inside a stream (our envelope's `error` object, or an OpenAI-style one)."""
    if not isinstance(error, dict):
        return UpstreamError(f"{stage}: stream failed: {error}", code="upstream_error")
    cls = _CATEGORIES.get(str(error.get("type")), UpstreamError)
    message = f"{stage}: {error.get('message') or 'stream failed'}"
    return cls(message, code=error.get("code") or "upstream_error", param=error.get("param"))
