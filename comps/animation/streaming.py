"""`WS /v1/animation/stream`: speech in as it is spoken, one growing fragmented MP4 (or raw frames) out.

The protocol, in order:

1. client → `{"type": "start", "avatar"?, "inference_mode"?, "fps"?, "video"?: true, "frames"?: false}` (text)
2. server → `{"type": "started", "id", "video_url", "content_type": "video/mp4", "fps"}`; from now on
   `GET /v1/videos/{id}` streams the video as it is made (and serves the whole file once done). `fps`
   is the start's, or where it names none the service's choice (`ANIMATION_STREAM_RATE`: the full
   rate, or half of it on a CPU that renders slower than that, see `comps.animation.pace`)
3. client → binary messages of 16 kHz mono PCM16 (little-endian), any sizes; text
   `{"type": "silence", "seconds"}` adds silence; text `{"type": "end"}` ends the speech
4. server → binary messages: the fMP4 bytes in order (unless `"video": false`), then
   `{"type": "done", "id", "video_url", "video_path", "frames", "fps", "duration_s"}` and the socket closes.

With `"frames": true` (`video` is then ignored) nothing is encoded or stored: `started` is
`{"type": "started", "id", "video_url": "", "content_type": "video/x-raw;format=I420", "width",
"height", "fps"}` (even sides: an avatar's odd last row or column is dropped), each frame is one
binary message of width * height * 3 / 2 bytes of I420 (frame i plays at i / fps), and `done` has
`"video_url": ""` and `"video_path": ""`. The id only names the stream in logs.

Back-pressure: the render's worker thread hands each message over (`produce_in_thread`, no buffer)
and waits until this task has taken it and the previous `ws.send_bytes` has returned; the server's
send waits while the connection's write buffer is full, so a client that stops reading stops the
render within a few messages (the socket buffers'), and a slow one paces it.

Any failure is a final `{"type": "error", "error": {...}}` in the error envelope, then the close; a
client that goes away stops the render at once and its partial file (if any) is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Literal

import anyio
import anyio.to_thread
import numpy as np
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from comps.animation.live import LiveRender
from comps.animation.wav2lip.mel import SAMPLE_RATE
from comps.core.concurrency import produce_in_thread, task_group
from comps.core.errors import InternalError, InvalidRequest, PayloadTooLarge, ServiceError

logger = logging.getLogger(__name__)

POLICY_VIOLATION = 1008  # WebSocket close code for a refused session


class StreamStart(BaseModel):
    """The session's first message."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["start"]
    avatar: str | None = Field(default=None, max_length=200)
    inference_mode: str | None = Field(default=None, max_length=64)
    fps: float | None = Field(default=None, gt=0, le=60)
    video: bool = Field(default=True, description="send the fMP4 bytes on the socket too")
    frames: bool = Field(default=False, description="send raw I420 frames instead; nothing encoded or stored")


class StreamControl(BaseModel):
    """A text message after the start."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["end", "silence"]
    seconds: float = Field(default=0.0, ge=0.0, le=30.0)


class LiveSession(BaseModel):
    """What the service opened for one stream (sent as `started`); width and height for raw frames only."""

    id: str
    video_url: str
    content_type: str = "video/mp4"
    width: int | None = None
    height: int | None = None
    fps: float | None = None

    def started(self) -> dict[str, object]:
        """The `started` message."""
        return {"type": "started", **self.model_dump(exclude_none=True)}


def pcm16(data: bytes) -> np.ndarray:
    """16-bit little-endian PCM -> float32 in [-1, 1)."""
    if len(data) % 2:
        raise InvalidRequest("speech messages must hold whole 16-bit samples (an even number of bytes)", code="bad_pcm")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


async def serve_stream(
    ws: WebSocket,
    *,
    open_live: Callable[[StreamStart], Awaitable[tuple[LiveSession, LiveRender]]],
    run_thread: Callable[..., Awaitable[object]],
    finish: Callable[[LiveSession, LiveRender, bool], dict[str, object]],
    max_seconds: float,
    max_frames: int,
) -> None:
    """Run one session on an accepted socket (see the module docstring).

    Speech past `max_seconds`, or past the length `max_frames` frames play for at the stream's rate,
    is refused (413) when it arrives.
    """
    opened: tuple[LiveSession, LiveRender] | None = None
    completed = False
    try:
        try:
            first_message = await ws.receive()
            if first_message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(first_message.get("code", 1000))
            start = StreamStart.model_validate_json(first_message.get("text") or "")  # speech before it: refused
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise InvalidRequest(f"start message: {param}: {first['msg']}", param=param, code="bad_start") from exc
        opened = await open_live(start)
        session, render = opened
        await ws.send_json(session.started())
        rate = session.fps or render.session.fps
        seconds_limit, frames_limit = int(max_seconds * SAMPLE_RATE), int(max_frames * SAMPLE_RATE / rate)

        async def receive() -> None:
            received = 0
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(message.get("code", 1000))
                if message.get("bytes") is not None:
                    samples = pcm16(message["bytes"])
                else:
                    control = StreamControl.model_validate_json(message.get("text") or "")
                    if control.type == "end":
                        render.end()
                        return
                    samples = np.zeros(round(control.seconds * SAMPLE_RATE), np.float32)
                received += samples.size
                if received > seconds_limit:
                    raise PayloadTooLarge(f"speech longer than the limit of {max_seconds:g} s", code="audio_too_long")
                if received > frames_limit:
                    raise PayloadTooLarge(
                        f"speech longer than {max_frames} frames play for at {rate:g} fps (ANIMATION_MAX_FRAMES)",
                        code="too_many_frames",
                    )
                render.push(samples)

        async with produce_in_thread(render.run, run=run_thread) as chunks, task_group() as group:
            group.start_soon(receive)
            async for chunk in chunks:
                if start.video or start.frames:
                    await ws.send_bytes(chunk)
        completed = True
        await ws.send_json({"type": "done", **await anyio.to_thread.run_sync(finish, session, render, True)})
        await ws.close()
    except WebSocketDisconnect:
        logger.info("stream client went away; render stopped")
    except ServiceError as exc:
        await _fail(ws, exc)
    except ValidationError as exc:
        await _fail(ws, InvalidRequest(f"control message: {exc.errors()[0]['msg']}", code="bad_message"))
    except Exception as exc:
        logger.exception("stream failed")
        await _fail(ws, InternalError(f"stream failed: {type(exc).__name__}"))
    finally:
        if opened is not None and not completed:
            with anyio.CancelScope(shield=True):  # the partial file goes even when this task is being cancelled
                await anyio.to_thread.run_sync(finish, opened[0], opened[1], False)


async def _fail(ws: WebSocket, error: ServiceError) -> None:
    try:
        await ws.send_json({"type": "error", **error.to_body()})
        await ws.close(code=POLICY_VIOLATION if error.status < 500 else 1011)
    except (WebSocketDisconnect, RuntimeError):  # the client is gone already
        pass
