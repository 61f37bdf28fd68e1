"""One error model for every service: a category decides the HTTP status and whether a retry can help."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from comps.core.request_id import current_request_id


class ErrorCategory(StrEnum):
    """What went wrong, from the caller's point of view."""

    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    NOT_FOUND = "not_found"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNPROCESSABLE = "unprocessable"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    UPSTREAM = "upstream"
    INTERNAL = "internal"


logger = logging.getLogger(__name__)

_STATUS: dict[ErrorCategory, int] = {
    ErrorCategory.INVALID_REQUEST: 400,
    ErrorCategory.AUTHENTICATION: 401,
    ErrorCategory.NOT_FOUND: 404,
    ErrorCategory.PAYLOAD_TOO_LARGE: 413,
    ErrorCategory.UNPROCESSABLE: 422,
    ErrorCategory.UNAVAILABLE: 503,
    ErrorCategory.TIMEOUT: 504,
    ErrorCategory.UPSTREAM: 502,
    ErrorCategory.INTERNAL: 500,
}

# A retry can help only when the trouble is on the serving side and may pass.
_RETRYABLE = {ErrorCategory.UNAVAILABLE, ErrorCategory.TIMEOUT, ErrorCategory.UPSTREAM}


class ServiceError(Exception):
    """Base of every error a service reports to its caller."""

    category: ErrorCategory = ErrorCategory.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        """Create the error; `status` overrides the category's default (e.g. an upstream 404)."""
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.retry_after = retry_after
        self._status = status

    @property
    def status(self) -> int:
        """The HTTP status this error is answered with."""
        return self._status if self._status is not None else _STATUS[self.category]

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later."""
        return self.category in _RETRYABLE

    def to_body(self) -> dict[str, Any]:
        """The error envelope `{"error": {"message", "type", "code", "param", "request_id"}}`.

        `request_id` is the id of the request being served (None outside one), to find its log lines.
        """
        return {
            "error": {
                "message": self.message,
                "type": self.category.value,
                "code": self.code,
                "param": self.param,
                "request_id": current_request_id(),
            }
        }


class InvalidRequest(ServiceError):
    """The caller sent something we cannot use (400)."""

    category = ErrorCategory.INVALID_REQUEST


class AuthenticationError(ServiceError):
    """The request lacks the service's API key, or carries a wrong one (401, with `WWW-Authenticate: Bearer`)."""

    category = ErrorCategory.AUTHENTICATION


class NotFound(ServiceError):
    """The named resource does not exist (404)."""

    category = ErrorCategory.NOT_FOUND


class PayloadTooLarge(ServiceError):
    """The request body or media is over the configured limit (413)."""

    category = ErrorCategory.PAYLOAD_TOO_LARGE


class Unprocessable(ServiceError):
    """Well-formed input whose content cannot be processed, e.g. an image without a face (422)."""

    category = ErrorCategory.UNPROCESSABLE


class Unavailable(ServiceError):
    """The service cannot take the request now: not ready, or its queue is full (503)."""

    category = ErrorCategory.UNAVAILABLE


class Timeout(ServiceError):
    """A stage did not answer in time (504)."""

    category = ErrorCategory.TIMEOUT


class UpstreamError(ServiceError):
    """A downstream service failed (502 unless a status is given)."""

    category = ErrorCategory.UPSTREAM


class InternalError(ServiceError):
    """A bug or an unexpected failure on our side (500)."""

    category = ErrorCategory.INTERNAL


_CLASSES: dict[ErrorCategory, type[ServiceError]] = {
    cls.category: cls
    for cls in (
        InvalidRequest, AuthenticationError, NotFound, PayloadTooLarge, Unprocessable, Unavailable, Timeout,
        UpstreamError, InternalError,
    )
}  # fmt: skip
_BY_STATUS: dict[int, type[ServiceError]] = {status: _CLASSES[category] for category, status in _STATUS.items()}


def error_class(category: str) -> type[ServiceError] | None:
    """The error class of a category name (an envelope's `type`), or None for a name that is not ours."""
    try:
        return _CLASSES[ErrorCategory(category)]
    except ValueError:
        return None


def class_for_status(status: int) -> type[ServiceError]:
    """The error class answering with `status`: the one table above, then 4xx -> invalid_request, 5xx -> internal."""
    return _BY_STATUS.get(status, InvalidRequest if status < 500 else InternalError)


def error_response(error: ServiceError) -> JSONResponse:
    """Render a ServiceError as a JSON response with the envelope."""
    headers = {}
    if error.category is ErrorCategory.AUTHENTICATION:
        headers["WWW-Authenticate"] = "Bearer"
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return JSONResponse(error.to_body(), status_code=error.status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(location) or None
    message = str(first.get("msg", "invalid request"))
    if param:
        message = f"{param}: {message}"
    elif first.get("type") == "missing":
        message = "the request body is missing: send a JSON object"
    return message, param


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure, ours or the framework's, answer in the error envelope."""

    async def on_service_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return error_response(exc)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, param = _validation_message(exc)
        return error_response(InvalidRequest(message, param=param, code="validation_error"))

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(class_for_status(exc.status_code)(str(exc.detail), status=exc.status_code))

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return error_response(InternalError(f"internal error: {type(exc).__name__}"))

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
