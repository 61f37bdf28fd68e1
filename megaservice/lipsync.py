"""A client of the animation service's `WS /v1/animation/stream`, remote (aiohttp) or in-process (ASGI).

One `LipSyncStream` per answer: `open` sends the start and returns the video id and URL at once,
`speak` sends speech as it is synthesized, `end` waits for the finished video. Failures are our
errors naming the animation stage; closing early stops the render on the service.

With `"frames": true` in the options the service sends the lip-synced frames themselves (raw I420,
`width` x `height` at `fps`, see `comps.animation.streaming`): one task calls `speak` and then
`send_end`, another calls `receive` for each frame until the `done` record. Both sockets take one
sender and one receiver at once; the service renders only as fast as `receive` takes the frames.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import anyio
import numpy as np
import numpy.typing as npt
from anyio.streams.memory import MemoryObjectSendStream
from starlette.types import ASGIApp, Message

from comps.core.auth import CLOSE_POLICY
from comps.core.concurrency import UNBOUNDED, Producer
from comps.core.errors import ServiceError, Unavailable, UpstreamError
from comps.core.request_id import REQUEST_ID_HEADER, current_request_id
from comps.core.upstream import deadline_error, in_band_error

STAGE = "animation"
PATH = "/v1/animation/stream"
_ASGI_SEND_BUFFER = 4  # messages the in-process app may send ahead of the reader (a socket buffers a few frames)


# The largest raw frame the service can send: a 4096-pixel avatar side (ANIMATION_AVATAR_MAX_SIDE's
# limit) upscaled 4x by GFPGAN, square, in I420 (1.5 bytes a pixel): 384 MiB. A 1080p frame is 3 MiB.
MAX_MESSAGE_BYTES = (4096 * 4) ** 2 * 3 // 2


class _Socket(Protocol):
    async def send_text(self, text: str) -> None: ...
    async def send_bytes(self, data: bytes) -> None: ...
    async def receive(self) -> bytes | dict[str, Any]: ...
    async def aclose(self) -> None: ...


class LipSyncStream:
    """One streamed lip-sync render on the animation service."""

    def __init__(self, socket: _Socket) -> None:
        """Use an opened socket (see `open_lipsync`)."""
        self._socket = socket
        self.id = ""
        self.video_url = ""  # "" for raw frames: nothing is stored
        self.content_type = ""
        self.width: int | None = None  # of each raw frame (pixels); None for an fMP4 stream
        self.height: int | None = None
        self.fps: float | None = None  # the stream's rate (the service's choice where the start names none)

    async def start(self, options: Mapping[str, Any]) -> None:
        """Send the start (avatar, inference_mode, fps, frames) and wait for the stream's id.

        The fMP4 bytes are not asked for (`video: false`: the video is fetched by URL); `frames: true`
        asks for raw frames, whose size is then in `width` and `height`. The rate is in `fps`.
        """
        await self._socket.send_text(json.dumps({"type": "start", "video": False, **options}))
        started = await self._next("started")
        self.id, self.video_url = str(started["id"]), str(started["video_url"])
        self.content_type = str(started.get("content_type", ""))
        self.fps = float(started["fps"]) if "fps" in started else None
        if options.get("frames"):
            self.width, self.height = int(started["width"]), int(started["height"])

    async def speak(self, samples: npt.NDArray[np.float32]) -> None:
        """The next speech samples (16 kHz mono float32), sent as PCM16."""
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        await self._socket.send_bytes(pcm)

    async def send_end(self) -> None:
        """No more speech; returns at once (raw frames: `receive` until the `done` record)."""
        await self._socket.send_text(json.dumps({"type": "end"}))

    async def end(self) -> dict[str, Any]:
        """No more speech: wait until the whole video is made; its `done` record (fMP4 streams only)."""
        await self.send_end()
        return await self.wait_done()

    async def wait_done(self) -> dict[str, Any]:
        """The `done` record of an fMP4 stream, once the video is complete (after `send_end`).

        A client that speaks for long should have this pending from the start, in a task of its own:
        only a pending receive answers the service's WebSocket keepalive pings (uvicorn closes a
        socket whose pings stay unanswered for 40 s), and an `error` event is then seen when it comes.
        """
        return await self._next("done")

    async def receive(self) -> bytes | dict[str, Any]:
        """The next message: a raw frame (`width * height * 3 // 2` bytes of I420) or a text message, parsed.

        One caller at a time. The last one is the `done` record, then the service closes.

        Raises:
            ServiceError: the service's in-band `error` event, as our error naming the animation stage.
            UpstreamError: the socket closed before `done`.
        """
        message = await self._socket.receive()
        if isinstance(message, dict) and message.get("type") == "error":
            raise in_band_error(STAGE, message.get("error"))
        return message

    async def aclose(self) -> None:
        """Close the socket (the service stops a render that has not ended)."""
        await self._socket.aclose()

    async def _next(self, kind: str) -> dict[str, Any]:
        message = await self.receive()
        if isinstance(message, bytes):
            raise UpstreamError(f"{STAGE}: expected {kind!r} on the stream, got {len(message)} bytes")
        if message.get("type") != kind:
            raise UpstreamError(f"{STAGE}: expected {kind!r} on the stream, got {message.get('type')!r}")
        return message


def _broken(exc: Exception) -> UpstreamError:
    return UpstreamError(f"{STAGE}: the stream broke: {type(exc).__name__}: {exc}", code="upstream_error")


class _AiohttpSocket:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._session, self._ws = session, ws

    # A service that dies mid-stream resets the socket under a send: that is the stage's failure, named.
    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send_str(text)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise _broken(exc) from exc

    async def send_bytes(self, data: bytes) -> None:
        try:
            await self._ws.send_bytes(data)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise _broken(exc) from exc

    async def receive(self) -> bytes | dict[str, Any]:
        message = await self._ws.receive()
        if message.type == aiohttp.WSMsgType.BINARY:
            frame: bytes = message.data
            return frame
        if message.type != aiohttp.WSMsgType.TEXT:
            raise UpstreamError(f"{STAGE}: the stream closed early ({message.type.name})", code="upstream_error")
        try:
            data: dict[str, Any] = json.loads(message.data)
        except ValueError as exc:
            raise UpstreamError(f"{STAGE}: the stream sent text that is not JSON", code="bad_upstream_body") from exc
        return data

    async def aclose(self) -> None:
        await self._ws.close()
        await self._session.close()


class _AsgiSocket:
    """A WebSocket to an in-process ASGI app: the app runs as a producer of its outgoing messages.

    What the client sends waits in an unbounded inbox (sending never blocks); what the app sends
    waits in a small buffer, like a socket's, so an app sending raw frames to a client that does not
    read them is held back. The two directions are separate streams: one task may send while
    another receives.
    """

    def __init__(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        self._inbox, self._inbox_read = anyio.create_memory_object_stream[Message](UNBOUNDED)
        self._outgoing = Producer(self._run(app, scope), buffer=_ASGI_SEND_BUFFER)

    def _run(self, app: ASGIApp, scope: dict[str, Any]) -> Any:
        async def run(out: MemoryObjectSendStream[Message]) -> None:
            async def receive() -> Message:
                return await self._inbox_read.receive()

            await app(scope, receive, out.send)

        return run

    async def accept(self) -> None:
        self._inbox.send_nowait({"type": "websocket.connect"})
        message = await anext(self._outgoing)
        if message["type"] != "websocket.accept":
            reason = f": {message['reason']}" if message.get("reason") else ""
            code = "upstream_auth" if message.get("code") == CLOSE_POLICY else "upstream_error"
            await self._outgoing.aclose()
            raise UpstreamError(f"{STAGE}: the in-process stream refused the connection{reason}", code=code)

    async def send_text(self, text: str) -> None:
        self._inbox.send_nowait({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        self._inbox.send_nowait({"type": "websocket.receive", "bytes": data})

    async def receive(self) -> bytes | dict[str, Any]:
        try:
            message = await anext(self._outgoing)
        except StopAsyncIteration:
            raise UpstreamError(f"{STAGE}: the stream closed early", code="upstream_error") from None
        if message["type"] != "websocket.send":
            raise UpstreamError(f"{STAGE}: the stream closed early ({message['type']})", code="upstream_error")
        if message.get("bytes") is not None:
            frame: bytes = message["bytes"]
            return frame
        data: dict[str, Any] = json.loads(message["text"])
        return data

    async def aclose(self) -> None:
        self._inbox.send_nowait({"type": "websocket.disconnect", "code": 1000})
        await self._outgoing.aclose()


async def open_lipsync(
    *,
    base_url: str,
    app: ASGIApp | None,
    options: Mapping[str, Any],
    connect_timeout_s: float,
    headers: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> LipSyncStream:
    """Open a stream to the animation service at `base_url` (or to its in-process `app`) and start it.

    `headers` go on the handshake: the node's key (`MicroService.headers`), where it has one.
    `timeout_s` bounds the whole opening (connect, handshake, start; the node's timeout): a service that
    accepts the connection but never answers (hung, stopped) is a 504 naming the stage, not a wait forever.

    Raises:
        Timeout: not open within `timeout_s`. Unavailable, UpstreamError: refused, unreachable, failed.
    """
    if timeout_s is None:
        return await _open(base_url=base_url, app=app, options=options, connect_timeout_s=connect_timeout_s,
                           headers=headers)  # fmt: skip
    try:
        async with asyncio.timeout(timeout_s):  # cancels once: the socket is still closed on the way out
            return await _open(base_url=base_url, app=app, options=options, connect_timeout_s=connect_timeout_s,
                               headers=headers)  # fmt: skip
    except TimeoutError as exc:
        raise deadline_error(STAGE, timeout_s) from exc


async def _open(
    *,
    base_url: str,
    app: ASGIApp | None,
    options: Mapping[str, Any],
    connect_timeout_s: float,
    headers: Mapping[str, str] | None,
) -> LipSyncStream:
    headers = {**(headers or {}), **({REQUEST_ID_HEADER: rid} if (rid := current_request_id()) else {})}
    socket: _Socket
    try:
        if app is not None:
            url = urlsplit(base_url)
            scope = {
                "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "path": PATH,
                "raw_path": PATH.encode(), "query_string": b"", "subprotocols": [],
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                "server": (url.hostname or "animation", url.port or 80), "client": ("127.0.0.1", 123),
            }  # fmt: skip
            asgi = _AsgiSocket(app, scope)
            await asgi.accept()
            socket = asgi
        else:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s))
            try:
                ws = await session.ws_connect(
                    base_url.replace("http", "ws", 1) + PATH,
                    headers=headers,
                    heartbeat=30,
                    max_msg_size=MAX_MESSAGE_BYTES,
                )
            except BaseException:
                await session.close()
                raise
            socket = _AiohttpSocket(session, ws)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        if isinstance(exc, aiohttp.WSServerHandshakeError) and exc.status in (401, 403):
            # As `comps.core.upstream.status_error` says of a 401/403: our credentials are wrong, not the caller's.
            raise UpstreamError(
                f"{STAGE}: the stream was refused (HTTP {exc.status}); check the API key this service sends",
                code="upstream_auth",
            ) from exc
        raise Unavailable(f"{STAGE}: cannot open the stream at {base_url}: {exc}", code="upstream_unreachable") from exc
    stream = LipSyncStream(socket)
    try:
        await stream.start(options)
    except BaseException as exc:
        await stream.aclose()
        if isinstance(exc, ServiceError | anyio.get_cancelled_exc_class()):
            raise
        raise UpstreamError(f"{STAGE}: the stream failed to start: {exc}", code="upstream_error") from exc
    return stream
