"""The events of the streamed answer (`POST /v1/avatarchatbot/stream`): the gateway emits them, clients parse them.

Each event is one server-sent event whose `event:` field is the model's `name` and whose data is
the model as JSON. A failure after the stream has started is a final `error` event carrying the
error envelope; the stream then closes.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from comps.core.sse import SseEvent, sse_event


class _Event(BaseModel):
    # Unknown fields are ignored so that older clients read newer gateways.
    model_config = ConfigDict(extra="ignore")

    name: ClassVar[str]


class Transcript(_Event):
    """What was heard (the typed text when the question was typed)."""

    name: ClassVar[str] = "transcript"
    text: str


class AnswerDelta(_Event):
    """The next piece of the answer's text, as the LLM writes it."""

    name: ClassVar[str] = "answer"
    delta: str


class Video(_Event):
    """The answer's one continuous video, sent before its first frame exists.

    `GET url` streams it as it is made, a fragmented MP4 a page can play while it grows (MediaSource);
    once complete the same URL serves the whole file (with Range).
    """

    name: ClassVar[str] = "video"
    id: str = Field(description="the video id")
    url: str = Field(description="a URL on the gateway streaming the fMP4")
    content_type: str = Field(
        default="video/mp4", description='the MIME type with its codecs, e.g. video/mp4; codecs="..."'
    )


class Segment(_Event):
    """One spoken sentence's video, in order; the segments played back to back are the answer."""

    name: ClassVar[str] = "segment"
    index: int = Field(ge=0)
    text: str = Field(description="the sentence spoken in this segment")
    id: str = Field(description="the video id")
    video_url: str = Field(description="a URL on the gateway serving the mp4")
    video_path: str = Field(description="the animation service's own path (OPEA's answer)")
    duration_s: float | None = None


class Done(_Event):
    """The answer is complete."""

    name: ClassVar[str] = "done"
    transcript: str | None
    answer: str
    segments: int = Field(default=0, ge=0, description="per-sentence segments sent (0 for the continuous video)")
    video_url: str | None = Field(default=None, description="the complete video (the `video` event's URL)")
    duration_s: float | None = None
    timings: dict[str, float] = Field(description="seconds per stage and in total")


class ErrorDetail(BaseModel):
    """The error envelope's object (see `comps.core.errors`)."""

    message: str
    type: str
    code: str | None = None
    param: str | None = None
    request_id: str | None = Field(default=None, description="the request's id in every service's logs")


class Error(_Event):
    """The stream failed after it had started; nothing follows."""

    name: ClassVar[str] = "error"
    error: ErrorDetail


AnswerEvent = Transcript | AnswerDelta | Video | Segment | Done | Error

_BY_NAME: dict[str, type[AnswerEvent]] = {
    cls.name: cls for cls in (Transcript, AnswerDelta, Video, Segment, Done, Error)
}


def encode_event(event: AnswerEvent) -> str:
    """The server-sent event for `event`."""
    return sse_event(event.model_dump(mode="json"), event=event.name)


def decode_event(event: SseEvent) -> AnswerEvent | None:
    """The typed event of a parsed server-sent event; None for an event name this version does not know.

    Raises:
        pydantic.ValidationError: a known event whose data does not match its model.
    """
    cls = _BY_NAME.get(event.event or "")
    if cls is None and event.error is not None:
        cls = Error
    return None if cls is None else cls.model_validate(event.data)
