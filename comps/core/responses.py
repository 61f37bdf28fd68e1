"""A streaming response that never leaves its iterator (and what feeds it) running after the response ended."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


async def close_iterator(iterator: AsyncIterable[Any]) -> None:
    """Close an async generator (a plain iterator has nothing to close)."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its iterator however the response ends.

    Starlette leaves the iterator as it stands when the client goes away mid-send: suspended at a
    `yield`, where no `finally` inside it runs until the garbage collector finalizes it (or never,
    for a generator that had not entered its `try`). A producer behind it would wait for its reader
    forever, holding what it holds (the LLM's inference slot).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response, then close the iterator (shielded: it runs when cancelled too)."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await close_iterator(self.body_iterator)
