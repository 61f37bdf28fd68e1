"""Stop work whose client has gone: a non-streaming answer is useless once nobody waits for it.

Starlette cancels a streaming response when the client disconnects, but a plain endpoint runs to
the end. `unless_disconnected` races the work against the ASGI `http.disconnect` message (which
arrives once the request body has been read and the client closes the connection) and cancels
the work when the client goes first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from starlette.requests import Request

T = TypeVar("T")

# nginx's "client closed request": logged, never seen by the gone client.
CLIENT_CLOSED = 499


class ClientDisconnected(Exception):
    """The client closed the connection before the answer was ready; the work was cancelled."""


async def unless_disconnected(request: Request, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work()` and return its result, or cancel it when the client leaves first.

    Raises:
        ClientDisconnected: the client left first (answer with `CLIENT_CLOSED`, which nobody reads).
    """
    outcome: list[T] = []
    failed: list[Exception] = []
    async with anyio.create_task_group() as tasks:

        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            tasks.cancel_scope.cancel()

        tasks.start_soon(watch)
        try:
            outcome.append(await work())
        except Exception as exc:  # raised below as itself, not wrapped in the task group's ExceptionGroup
            failed.append(exc)
        tasks.cancel_scope.cancel()
    if failed:
        raise failed[0]
    if not outcome:
        raise ClientDisconnected
    return outcome[0]
