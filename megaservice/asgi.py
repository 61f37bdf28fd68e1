"""An ASGI transport for httpx that streams the response body as the app sends it.

`httpx.ASGITransport` collects the whole body before returning, so an in-process LLM's
server-sent events would arrive all at once at the end; this one hands each chunk over as
the app sends it, which stream edges need to start TTS while the LLM is still writing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.types import ASGIApp, Message

_END = object()


class _BodyStream(httpx.AsyncByteStream):
    """Body chunks from a queue filled by the running app; closing it stops the app."""

    def __init__(self, chunks: asyncio.Queue[object], task: asyncio.Task[None], closed: asyncio.Event) -> None:
        self._chunks = chunks
        self._task = task
        self._closed = closed

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._chunks.get()
            if chunk is _END:
                return
            if isinstance(chunk, BaseException):
                raise httpx.RemoteProtocolError(f"in-process app failed mid-response: {chunk!r}") from chunk
            assert isinstance(chunk, bytes)
            yield chunk

    async def aclose(self) -> None:
        self._closed.set()
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Call an ASGI app in-process; the response is returned at `http.response.start`, the body streams."""

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 123)) -> None:
        """Wrap `app`; `client` is the peer address the app sees."""
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Run the app as a task and return once it has started the response."""
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": "",
        }
        body = await request.aread()
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue[object] = asyncio.Queue()
        closed = asyncio.Event()
        request_sent = False

        async def receive() -> Message:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await closed.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                if message.get("body") and request.method != "HEAD":
                    chunks.put_nowait(bytes(message["body"]))
                if not message.get("more_body", False):
                    chunks.put_nowait(_END)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                # Starlette re-raises after it has sent its 500; before any response, answer 500 ourselves.
                if not started.done():
                    started.set_result((500, [(b"content-type", b"text/plain")]))
                    chunks.put_nowait(f"internal error: {type(exc).__name__}".encode())
                    chunks.put_nowait(_END)
                else:
                    chunks.put_nowait(exc)  # seen by the reader only if the body had not ended
            else:
                if not started.done():
                    started.set_exception(httpx.RemoteProtocolError("in-process app returned without a response"))
                chunks.put_nowait(_END)

        task = asyncio.create_task(run())
        try:
            status, headers = await asyncio.shield(started)
        except BaseException:
            task.cancel()
            raise
        return httpx.Response(status, headers=headers, stream=_BodyStream(chunks, task, closed), request=request)
