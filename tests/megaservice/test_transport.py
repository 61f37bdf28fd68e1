"""The aiohttp-backed httpx transport against real sockets: keep-alive, streaming, and failure mapping."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import httpx
import pytest

from megaservice.calls import build_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """Serve `handler`; every accepted connection is closed when its handler ends.

    Python 3.11 leaves an accepted socket open after its handler returns, and the
    garbage collector then reports it (as an unraisable ResourceWarning) in whichever
    test happens to be running.
    """

    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(closing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    return head + await reader.readexactly(length)


@pytest.mark.anyio
async def test_requests_reuse_one_connection_and_bodies_stream_in_chunks() -> None:
    connections = 0
    second_chunk = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while not reader.at_eof():
            try:
                request = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            if b"/stream" in request:
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
                writer.write(b"5\r\nfirst\r\n")
                await writer.drain()
                await second_chunk.wait()
                writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
            else:
                writer.write(
                    b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{"ok":true}'
                )
            await writer.drain()

    async with raw_server(handler) as url, build_client([]) as client:
        for _ in range(3):
            response = await client.post(f"{url}/run", json={"x": 1})
            assert response.json() == {"ok": True}
        async with client.stream("GET", f"{url}/stream") as streamed:
            chunks = streamed.aiter_raw()
            assert await chunks.__anext__() == b"first"  # arrives before the server sends the rest
            second_chunk.set()
            assert b"".join([chunk async for chunk in chunks]) == b"second"
    assert connections == 1


@pytest.mark.anyio
async def test_a_reply_cut_mid_body_is_a_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial"')
        await writer.drain()
        writer.close()

    async with raw_server(handler) as url, build_client([]) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"{url}/run", json={})


@pytest.mark.anyio
async def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with build_client([]) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")
