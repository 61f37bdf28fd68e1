"""Ordered item streams between nodes: a replayable broadcast stream, and an ordered map with bounded concurrency."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

import anyio
from anyio.abc import TaskGroup

from comps.core.concurrency import task_group

T = TypeVar("T")
R = TypeVar("R")


class ItemStream(Generic[T]):
    """Items in production order; any number of readers each see every item from the first, in order."""

    def __init__(self) -> None:
        """Start open and empty."""
        self.items: list[T] = []
        self._closed = False
        self._error: BaseException | None = None
        self._changed = anyio.Event()

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
        self._changed = anyio.Event()

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


@dataclass(eq=False)
class _Pending(Generic[R]):
    """One started call of `ordered_map`: set once its result is in."""

    done: anyio.Event = field(default_factory=anyio.Event)
    value: R | None = None


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
    window = anyio.Semaphore(concurrency)
    started, in_order = anyio.create_memory_object_stream[_Pending[R]](concurrency)

    async def run(index: int, item: T, pending: _Pending[R]) -> None:
        pending.value = await call(index, item)
        pending.done.set()

    async def feed(group: TaskGroup) -> None:
        async with started:
            index = 0
            async for item in source:
                await window.acquire()
                pending: _Pending[R] = _Pending()
                group.start_soon(run, index, item, pending)
                await started.send(pending)
                index += 1

    async def emit() -> None:
        async with in_order:
            async for pending in in_order:
                await pending.done.wait()
                out.append(cast(R, pending.value))
                window.release()

    try:
        async with task_group() as group:
            group.start_soon(feed, group)
            group.start_soon(emit)
    except BaseException as exc:
        out.close(exc)
        raise
    out.close()
