"""A client of the animation service's `WS /v1/animation/stream`, remote (aiohttp) or in-process (ASGI).

One `LipSyncStream` per answer: `open` sends the start and returns the video id and URL at once,
`speak` sends speech as it is synthesized, `end` waits for the finished video. Failures are our
errors naming the animation stage; closing early stops the render on the service.
"""

from __future__ import annotations

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

from comps.core.concurrency import UNBOUNDED, Producer
from comps.core.errors import ServiceError, Unavailable, UpstreamError
from comps.core.request_id import REQUEST_ID_HEADER, current_request_id
from comps.core.upstream import in_band_error

STAGE = "animation"
PATH = "/v1/animation/stream"


class _Socket(Protocol):
    async def send_text(self, text: str) -> None: ...
    async def send_bytes(self, data: bytes) -> None: ...
    async def receive_json(self) -> dict[str, Any]: ...
    async def aclose(self) -> None: ...


class LipSyncStream:
    """One streamed lip-sync render on the animation service."""

    def __init__(self, socket: _Socket) -> None:
        """Use an opened socket (see `open_lipsync`)."""
        self._socket = socket
        self.id = ""
        self.video_url = ""

    async def start(self, options: Mapping[str, Any]) -> None:
        """Send the start (avatar, inference_mode, fps) and wait for the video id."""
        await self._socket.send_text(json.dumps({"type": "start", "video": False, **options}))
        started = await self._next("started")
        self.id, self.video_url = str(started["id"]), str(started["video_url"])

    async def speak(self, samples: npt.NDArray[np.float32]) -> None:
        """The next speech samples (16 kHz mono float32), sent as PCM16."""
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        await self._socket.send_bytes(pcm)

    async def end(self) -> dict[str, Any]:
        """No more speech: wait until the whole video is made; its `done` record."""
        await self._socket.send_text(json.dumps({"type": "end"}))
        return await self._next("done")

    async def aclose(self) -> None:
        """Close the socket (the service stops a render that has not ended)."""
        await self._socket.aclose()

    async def _next(self, kind: str) -> dict[str, Any]:
        message = await self._socket.receive_json()
        if message.get("type") == "error":
            raise in_band_error(STAGE, message.get("error"))
        if message.get("type") != kind:
            raise UpstreamError(f"{STAGE}: expected {kind!r} on the stream, got {message.get('type')!r}")
        return message


class _AiohttpSocket:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._session, self._ws = session, ws

    async def send_text(self, text: str) -> None:
        await self._ws.send_str(text)

    async def send_bytes(self, data: bytes) -> None:
        await self._ws.send_bytes(data)

    async def receive_json(self) -> dict[str, Any]:
        message = await self._ws.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            raise UpstreamError(f"{STAGE}: the stream closed early ({message.type.name})", code="upstream_error")
        data: dict[str, Any] = json.loads(message.data)
        return data

    async def aclose(self) -> None:
        await self._ws.close()
        await self._session.close()


class _AsgiSocket:
    """A WebSocket to an in-process ASGI app: the app runs as a producer of its outgoing messages."""

    def __init__(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        self._inbox, self._inbox_read = anyio.create_memory_object_stream[Message](UNBOUNDED)
        self._outgoing = Producer(self._run(app, scope), buffer=UNBOUNDED)

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
            raise UpstreamError(f"{STAGE}: the in-process stream refused the connection", code="upstream_error")

    async def send_text(self, text: str) -> None:
        self._inbox.send_nowait({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        self._inbox.send_nowait({"type": "websocket.receive", "bytes": data})

    async def receive_json(self) -> dict[str, Any]:
        try:
            message = await anext(self._outgoing)
        except StopAsyncIteration:
            raise UpstreamError(f"{STAGE}: the stream closed early", code="upstream_error") from None
        if message["type"] != "websocket.send" or message.get("text") is None:
            raise UpstreamError(f"{STAGE}: the stream closed early ({message['type']})", code="upstream_error")
        data: dict[str, Any] = json.loads(message["text"])
        return data

    async def aclose(self) -> None:
        self._inbox.send_nowait({"type": "websocket.disconnect", "code": 1000})
        await self._outgoing.aclose()


async def open_lipsync(
    *, base_url: str, app: ASGIApp | None, options: Mapping[str, Any], connect_timeout_s: float
) -> LipSyncStream:
    """Open a stream to the animation service at `base_url` (or to its in-process `app`) and start it."""
    headers = {REQUEST_ID_HEADER: rid} if (rid := current_request_id()) else {}
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
                ws = await session.ws_connect(base_url.replace("http", "ws", 1) + PATH, headers=headers, heartbeat=30)
            except BaseException:
                await session.close()
                raise
            socket = _AiohttpSocket(session, ws)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
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
