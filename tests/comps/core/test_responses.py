"""The streaming response closes its iterator however it ends: a client gone mid-send included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from fastapi.responses import StreamingResponse

from comps.core.responses import ClosingStreamingResponse

SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "method": "GET", "path": "/", "headers": []}


class StalledClient:
    """Stops reading at the first body bytes (the send waits, as flow control makes it), then disconnects."""

    def __init__(self) -> None:
        self.sending = anyio.Event()
        self.gone = anyio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            self.sending.set()
            await anyio.sleep_forever()


async def served(response_class: type[StreamingResponse]) -> list[str]:
    """What the body iterator went through by the time the response returned."""
    seen: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            yield b"second"
        finally:
            seen.append("closed")

    client = StalledClient()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(response_class(body()), SCOPE, client.receive, client.send)
        await client.sending.wait()
        client.gone.set()
    return seen


@pytest.mark.anyio
async def test_a_client_gone_mid_send_closes_the_iterator_before_the_response_returns() -> None:
    assert await served(ClosingStreamingResponse) == ["closed"]


@pytest.mark.anyio
async def test_starlettes_own_response_leaves_it_suspended() -> None:
    # Why the class exists: Starlette cancels the send and leaves the iterator at its `yield` for the
    # garbage collector (if this starts to pass as closed, the subclass can go).
    assert await served(StreamingResponse) == []
