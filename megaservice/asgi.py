"""An ASGI transport for httpx that streams the response body as the app sends it.

`httpx.ASGITransport` collects the whole body before returning, so an in-process LLM's
server-sent events would arrive all at once at the end; this one hands each chunk over as
the app sends it, which stream edges need to start TTS while the LLM is still writing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
from anyio.streams.memory import MemoryObjectSendStream
from starlette.types import ASGIApp, Message

from comps.core.concurrency import Producer


class _BodyStream(httpx.AsyncByteStream):
    """Body chunks as the running app sends them; closing it stops the app (see `comps.core.concurrency`)."""

    def __init__(self, chunks: Producer[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                yield chunk
        except Exception as exc:
            raise httpx.RemoteProtocolError(f"in-process app failed mid-response: {exc!r}") from exc

    async def aclose(self) -> None:
        await self._chunks.aclose()


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
        gone = anyio.Event()  # the reader closed the response: the app sees a disconnect

        async def produce(chunks: MemoryObjectSendStream[bytes]) -> None:
            request_sent = ended = False

            async def receive() -> Message:
                nonlocal request_sent
                if not request_sent:
                    request_sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await gone.wait()
                return {"type": "http.disconnect"}

            async def send(message: Message) -> None:
                nonlocal ended
                if message["type"] == "http.response.start":
                    started.set_result((message["status"], list(message.get("headers", []))))
                elif message["type"] == "http.response.body":
                    if message.get("body") and request.method != "HEAD":
                        await chunks.send(bytes(message["body"]))
                    if not message.get("more_body", False):
                        ended = True
                        chunks.close()  # the body is complete, whatever the app does after

            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                if ended:
                    return  # the reader has the whole body already
                if started.done():
                    raise
                # Starlette re-raises after it has sent its 500; before any response, answer 500 ourselves.
                started.set_result((500, [(b"content-type", b"text/plain")]))
                await chunks.send(f"internal error: {type(exc).__name__}".encode())
                return
            if not started.done():
                started.set_exception(httpx.RemoteProtocolError("in-process app returned without a response"))

        chunks = Producer(produce, on_close=gone.set)
        chunks.start()
        try:
            status, headers = await asyncio.shield(started)
        except BaseException:
            await chunks.aclose()
            raise
        return httpx.Response(status, headers=headers, stream=_BodyStream(chunks), request=request)
