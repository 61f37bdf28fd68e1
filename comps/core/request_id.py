"""The request id: read from `X-Request-ID` (or made) by every service, logged, put in errors, sent on every hop."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable
from typing import Any

import httpx

REQUEST_ID_HEADER = "X-Request-ID"
NO_REQUEST = "-"  # what log records show outside any request

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default=NO_REQUEST)


def new_request_id() -> str:
    """A fresh id: 16 hex digits, enough to be unique among a deployment's logs."""
    return uuid.uuid4().hex[:16]


def current_request_id() -> str | None:
    """The id of the request being served, or None outside one."""
    rid = request_id_var.get()
    return None if rid == NO_REQUEST else rid


async def forward_request_id(request: httpx.Request) -> None:
    """Httpx request hook: send the current request id on the outgoing hop (a caller's own id is kept)."""
    rid = current_request_id()
    if rid is not None and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = rid


def outgoing_hooks() -> dict[str, list[Callable[..., Any]]]:
    """`httpx.AsyncClient(event_hooks=outgoing_hooks())`: every client that calls another service uses these."""
    return {"request": [forward_request_id]}
