"""The live session's data-channel events: JSON objects with a `type`, sent in order as things happen.

`state` (listening, thinking, speaking), `transcript` (what was heard), `answer` (the next piece of
the answer's text), `interrupted` (barge-in: what of the answer was spoken), `error` (the error
envelope's object; the session goes on listening unless it is `closed` after it), `closed` (why the
server ended the session).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from comps.core.answer_events import ErrorDetail
from comps.core.errors import ServiceError

logger = logging.getLogger(__name__)

_KEPT = 256  # events kept for a channel that is not open yet
LiveState = Literal["listening", "thinking", "speaking"]


class State(BaseModel):
    """What the avatar is doing now."""

    type: Literal["state"] = "state"
    state: LiveState


class Transcript(BaseModel):
    """What was heard in the turn that just ended."""

    type: Literal["transcript"] = "transcript"
    text: str


class AnswerDelta(BaseModel):
    """The next piece of the answer's text, as the LLM writes it."""

    type: Literal["answer"] = "answer"
    delta: str


class Interrupted(BaseModel):
    """The person spoke over the answer: it stopped; `spoken` is what of it was heard (kept in the history)."""

    type: Literal["interrupted"] = "interrupted"
    spoken: str


class Error(BaseModel):
    """A turn failed (the session keeps listening)."""

    type: Literal["error"] = "error"
    error: ErrorDetail

    @classmethod
    def of(cls, error: ServiceError) -> Error:
        """The event for `error`."""
        return cls(error=ErrorDetail.model_validate(error.to_body()["error"]))


class Closed(BaseModel):
    """The server ended the session."""

    type: Literal["closed"] = "closed"
    reason: Literal["idle_timeout", "shutdown"]


LiveEvent = State | Transcript | AnswerDelta | Interrupted | Error | Closed


class _Channel(Protocol):
    readyState: str  # noqa: N815 (aiortc's name)

    def send(self, data: str) -> None: ...


class EventChannel:
    """Sends events on the session's data channel; those sent before it is open wait for it (in order)."""

    def __init__(self) -> None:
        self._channel: _Channel | None = None
        self._waiting: list[str] = []

    def attach(self, channel: Any) -> None:
        """The data channel the client opened; what waited goes out once it is open."""
        self._channel = channel
        if channel.readyState == "open":
            self._flush()
        else:
            channel.on("open", self._flush)

    def send(self, event: LiveEvent) -> None:
        """Send `event` now, or once the channel is open."""
        self._waiting.append(json.dumps(event.model_dump(mode="json")))
        if self._channel is None:
            del self._waiting[:-_KEPT]  # a client without a data channel: keep only the latest
        self._flush()

    def _flush(self) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            return
        waiting, self._waiting = self._waiting, []
        for data in waiting:
            try:
                channel.send(data)
            except Exception:  # noqa: BLE001 - a closing channel: the session ends anyway
                logger.debug("event not sent: the data channel is closing")
                return
