"""The in-process streaming transport: chunks as they are sent, closing stops the app, failures as httpx errors."""

from __future__ import annotations

import anyio
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from megaservice.asgi import StreamingASGITransport

pytestmark = pytest.mark.anyio


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://app")  # type: ignore[arg-type]


async def _start(send: Send, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})


async def test_each_chunk_arrives_while_the_app_is_still_sending() -> None:
    release = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await _start(send)
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"second", "more_body": False})

    async with _client(app) as client, client.stream("GET", "/") as response:
        chunks = response.aiter_raw()
        assert await chunks.__anext__() == b"first"  # before the app has finished
        release.set()
        assert [c async for c in chunks] == [b"second"]


async def test_closing_the_response_stops_the_app_at_once() -> None:
    stopped = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the request body
        await _start(send)
        try:
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            await anyio.sleep(3600)
        except anyio.get_cancelled_exc_class():
            stopped.set()
            raise

    async with _client(app) as client:
        async with client.stream("GET", "/") as response:
            assert await response.aiter_raw().__anext__() == b"x"
        assert stopped.is_set()


async def test_a_failure_before_the_response_is_a_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    async with _client(app) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert response.text == "internal error: RuntimeError"


async def test_a_failure_mid_body_is_a_protocol_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await _start(send)
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("mid-body")

    async with _client(app) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="mid-body"):
            await client.get("/")


async def test_a_failure_after_the_whole_body_is_not_the_readers_concern() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await _start(send)
        await send({"type": "http.response.body", "body": b"all", "more_body": False})
        raise RuntimeError("after the body")

    async with _client(app) as client:
        response = await client.get("/")
    assert response.text == "all"
