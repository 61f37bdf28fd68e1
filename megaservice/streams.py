"""Ordered item streams between nodes: a replayable broadcast stream, and an ordered map with bounded concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class ItemStream(Generic[T]):
    """Items in production order; any number of readers each see every item from the first, in order."""

    def __init__(self) -> None:
        """Start open and empty."""
        self.items: list[T] = []
        self._closed = False
        self._error: BaseException | None = None
        self._changed = asyncio.Event()

    @property
    def closed(self) -> bool:
        """Whether the producer has finished (or failed)."""
        return self._closed

    def append(self, item: T) -> None:
        """Publish one item to every reader."""
        if self._closed:
            raise RuntimeError("append to a closed stream")
        self.items.append(item)
        self._wake()

    def close(self, error: BaseException | None = None) -> None:
        """End the stream; readers re-raise `error` once they have seen every item before it."""
        if not self._closed:
            self._closed = True
            self._error = error
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[T]:
        index = 0
        while True:
            if index < len(self.items):
                yield self.items[index]
                index += 1
            elif self._closed:
                if self._error is not None:
                    raise self._error
                return
            else:
                await self._changed.wait()

    async def collect(self) -> list[T]:
        """Every item once the stream has ended."""
        return [item async for item in self]


async def first_failure(coroutines: list[Coroutine[Any, Any, Any]]) -> None:
    """Run coroutines concurrently; on the first exception cancel the others and raise it as is (no group)."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def ordered_map(
    source: AsyncIterable[T],
    call: Callable[[int, T], Awaitable[R]],
    out: ItemStream[R],
    *,
    concurrency: int,
) -> None:
    """Call `call(index, item)` for each source item as it arrives, at most `concurrency` in flight.

    Results are appended to `out` strictly in source order: a fast item waits for the slow one
    before it. The window counts items started but not yet emitted, so memory stays bounded.
    `out` is closed at the end, with the first failure if any (the other calls are cancelled).
    """
    window = asyncio.Semaphore(concurrency)
    started: asyncio.Queue[asyncio.Task[R] | None] = asyncio.Queue()
    calls: list[asyncio.Task[R]] = []

    async def feed() -> None:
        index = 0
        async for item in source:
            await window.acquire()
            task = asyncio.ensure_future(call(index, item))
            calls.append(task)
            started.put_nowait(task)
            index += 1
        started.put_nowait(None)

    async def emit() -> None:
        while (task := await started.get()) is not None:
            out.append(await task)
            window.release()

    try:
        await first_failure([feed(), emit()])
    except BaseException as exc:
        out.close(exc)
        raise
    finally:
        for task in calls:
            if not task.done():
                task.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
    out.close()
