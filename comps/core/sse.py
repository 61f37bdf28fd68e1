"""Server-sent events, both ways: encode and parse, and a stream whose failure after the first byte is a final event."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from comps.core.errors import InternalError, ServiceError
from comps.core.responses import ClosingStreamingResponse, close_iterator

logger = logging.getLogger(__name__)

DONE = "data: [DONE]\n\n"
_DONE_DATA = "[DONE]"

_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "one server-sent event; `data` is JSON (or `[DONE]`)",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}},
    "required": ["data"],
}
SSE_CONTENT: dict[str, Any] = {"text/event-stream": {"schema": _EVENT_SCHEMA}}
"""The OpenAPI `content` of an answer that can come as server-sent events, for a route's `responses`.

Before OpenAPI 3.2 (FastAPI writes 3.1) an event stream's `schema` describes each event, with the fields
3.2 gives an event: `event`, `data`, `id`.
"""


def sse_event(data: Any, *, event: str | None = None) -> str:
    """One SSE event whose data is JSON (or the raw string when `data` is a str)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n"


class UnreadableEvent(ValueError):
    """An event whose data is not JSON; `data` is what arrived."""

    def __init__(self, data: str) -> None:
        """Keep the raw data (the caller names the stage that sent it)."""
        super().__init__(f"event data is not JSON: {data[:200]!r}")
        self.data = data


@dataclass(frozen=True)
class SseEvent:
    """One parsed event: its `event:` name (None when absent) and its JSON data."""

    event: str | None
    data: Any

    @property
    def error(self) -> Any | None:
        """The error object of an error event (`event: error`, or a body with an `error` key), else None."""
        if isinstance(self.data, dict) and "error" in self.data:
            return self.data["error"]
        return self.data if self.event == "error" else None


async def parse_sse(lines: AsyncIterable[str]) -> AsyncIterator[SseEvent]:
    """Parse `text/event-stream` lines into events with JSON data, ending at `data: [DONE]` (comments, ids ignored).

    Raises:
        UnreadableEvent: an event's data is not JSON.
    """
    event: str | None = None
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r")
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif not line and data:
            text = "\n".join(data)
            if text.strip() == _DONE_DATA:
                return
            yield SseEvent(event, _json(text))
            event, data = None, []
        elif not line:
            event = None
    if data and (text := "\n".join(data)).strip() != _DONE_DATA:
        yield SseEvent(event, _json(text))


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UnreadableEvent(text) from exc


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
    finally:
        await close_iterator(events)
    if done:
        yield DONE


def sse_response(events: AsyncIterator[str], *, done: bool = True) -> ClosingStreamingResponse:
    """A `text/event-stream` response over guarded events."""
    return ClosingStreamingResponse(
        guard_stream(events, done=done),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
