"""Admission control: at most N pipelines at once, at most M waiting; beyond that 503 with Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from comps.core.errors import Unavailable


class Admission:
    """A bounded async semaphore that refuses instead of queueing without end."""

    def __init__(self, *, concurrency: int, max_waiting: int, retry_after_s: float = 5.0) -> None:
        """Allow `concurrency` pipelines at once and `max_waiting` more in line."""
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.retry_after_s = retry_after_s
        self._slots = asyncio.Semaphore(concurrency)
        self._admitted = 0

    @property
    def busy(self) -> int:
        """Pipelines running or waiting."""
        return self._admitted

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block; 503 when the line is full."""
        if self._admitted >= self.concurrency + self.max_waiting:
            raise Unavailable(
                f"gateway busy: {self._admitted} requests running or waiting; retry shortly",
                code="queue_full",
                retry_after=self.retry_after_s,
            )
        self._admitted += 1
        try:
            async with self._slots:
                yield
        finally:
            self._admitted -= 1
