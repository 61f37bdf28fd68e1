"""Server-sent events: encoding, and a stream whose failure after the first byte becomes a final in-band event."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from comps.core.errors import InternalError, ServiceError

logger = logging.getLogger(__name__)

DONE = "data: [DONE]\n\n"


def sse_event(data: Any, *, event: str | None = None) -> str:
    """One SSE event whose data is JSON (or the raw string when `data` is a str)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n"


async def guard_stream(events: AsyncIterator[str], *, done: bool = True) -> AsyncIterator[str]:
    """Pass events through; turn a failure into a final `error` event in the envelope, then close.

    Once the first byte is sent the HTTP status cannot change, so the error travels in-band.
    """
    try:
        async for chunk in events:
            yield chunk
    except ServiceError as exc:
        yield sse_event(exc.to_body(), event="error")
        return
    except Exception as exc:
        logger.exception("stream failed")
        yield sse_event(InternalError(f"stream failed: {type(exc).__name__}: {exc}").to_body(), event="error")
        return
    if done:
        yield DONE


def sse_response(events: AsyncIterator[str], *, done: bool = True) -> StreamingResponse:
    """A `text/event-stream` response over guarded events."""
    return StreamingResponse(
        guard_stream(events, done=done),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
