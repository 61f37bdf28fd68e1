"""Request body size limit (413 in the envelope) and a bounded inference queue (503 + Retry-After)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from comps.core.errors import PayloadTooLarge, Unavailable

T = TypeVar("T")


class BodySizeLimit:
    """Pure ASGI middleware refusing bodies over `max_bytes`, declared or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        """Wrap `app`."""
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check Content-Length first, then count bytes as they arrive."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer now and tell the app the client went away; whatever it sends later is dropped.
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        error = PayloadTooLarge(
            f"request body is larger than the limit of {self.max_bytes} bytes", code="body_too_large"
        )
        body = json.dumps(error.to_body()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Admission:
    """At most `concurrency` holders at once and `max_waiting` in line; beyond that `Unavailable` (503).

    The caller gets a Retry-After hint instead of piling up without end.
    """

    def __init__(self, *, concurrency: int, max_waiting: int, retry_after_s: float = 2.0, what: str = "server") -> None:
        """Create the admission; `what` names the refuser in the 503 message."""
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.retry_after_s = retry_after_s
        self.what = what
        self._slots = asyncio.Semaphore(concurrency)
        self._admitted = 0

    @property
    def busy(self) -> int:
        """Holders running or waiting right now."""
        return self._admitted

    def check(self) -> None:
        """Raise the 503 `slot()` would raise now, without taking a slot (before a streamed answer starts).

        Raises:
            Unavailable: the line is full.
        """
        if self._admitted >= self.concurrency + self.max_waiting:
            raise Unavailable(
                f"{self.what} busy: {self._admitted} requests in progress or queued; retry shortly",
                code="queue_full",
                retry_after=self.retry_after_s,
            )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block; 503 when the line is full."""
        self.check()
        self._admitted += 1
        try:
            async with self._slots:
                yield
        finally:
            self._admitted -= 1


class InferenceQueue(Admission):
    """An `Admission` whose holders run a blocking model call in a worker thread."""

    async def run(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run the blocking `fn(*args)` in a worker thread once a slot is free."""
        async with self.slot():
            return await anyio.to_thread.run_sync(lambda: fn(*args), abandon_on_cancel=False)
