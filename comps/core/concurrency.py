"""The one producer/consumer bridge: a producer (a coroutine or a worker thread) feeds a reader in order.

One cancellation rule everywhere: the reader going away (closing, breaking out, being cancelled)
stops the producer at once — a coroutine producer is cancelled; a thread producer sees its
`stopped` event set, its `emit` drops items from then on, and the reader waits until the thread
has returned, so no work outlives its reader. A producer's failure reaches the reader after the
items sent before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

T = TypeVar("T")
R = TypeVar("R")

Emit = Callable[[T], None]
"""Hands one item to the reader from a worker thread; blocks while the reader is behind."""

ThreadWork = Callable[[Emit[T], threading.Event], object]
"""Blocking producer: `work(emit, stopped)`; returns soon after `stopped` is set."""

ThreadRunner = Callable[..., Awaitable[Any]]
"""Runs `fn(*args)` in a worker thread started by anyio (`anyio.to_thread.run_sync`, `InferenceQueue.run`)."""

UNBOUNDED = math.inf
"""A buffer size for producers that must never block (event observers called synchronously)."""


async def _in_thread(fn: Callable[..., R], *args: object) -> R:
    return await anyio.to_thread.run_sync(lambda: fn(*args), abandon_on_cancel=False)


class Producer(Generic[T]):
    """Items a producer coroutine sends, read with `async for`; `aclose()` cancels the producer.

    The producer is `produce(send)`, `send` an anyio memory send stream (`await send.send(item)`, or
    `send.send_nowait(item)` with an `UNBOUNDED` buffer). It runs as a task of its own, started at
    the first read (or `start()`), because the reader may be closed from another task (httpx closes
    response streams there; async-generator finalizers run elsewhere), which a task group held
    across the reader's yields would not survive. Use it as `async with Producer(...) as items:`.
    """

    def __init__(
        self,
        produce: Callable[[MemoryObjectSendStream[T]], Awaitable[None]],
        *,
        buffer: float = 0,
        on_close: Callable[[], None] | None = None,
        cancel: bool = True,
    ) -> None:
        """Prepare the channel.

        Args:
            produce: the producer coroutine function.
            buffer: items that may wait unread before `send` blocks.
            on_close: runs when the reader goes away (a thread producer's `stopped.set`).
            cancel: cancel the producer when the reader goes away; False for a producer that ends by
                itself once `on_close` ran and must not be abandoned mid-way (a worker thread).
        """
        self._send, self._receive = anyio.create_memory_object_stream[T](buffer)
        self._produce = produce
        self._on_close = on_close
        self._cancel = cancel
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Start the producer now rather than at the first read."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async with self._send:
            await self._produce(self._send)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        if self._closed:
            raise StopAsyncIteration
        self.start()
        assert self._task is not None
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            self._closed = True
            await self._task  # the producer's failure, after every item it sent
            raise StopAsyncIteration from None
        except BaseException:  # the reader was cancelled (or the stream failed): it has gone away
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop the producer at once and wait until it has ended (its failure, if any, is dropped)."""
        self._closed = True
        self._receive.close()
        if self._on_close is not None:
            self._on_close()
        task = self._task
        if task is None:
            self._send.close()
            return
        if self._cancel:
            task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the reader left, nobody else will read it

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def produce_in_thread(work: ThreadWork[T], *, run: ThreadRunner = _in_thread, buffer: float = 0) -> Producer[T]:
    """Items a blocking `work(emit, stopped)` emits from a worker thread started by `run`.

    Back-pressure: `emit` blocks while `buffer` items wait unread. Once the reader has gone,
    `stopped` is set and `emit` drops its item instead of blocking; `work` returns at its next check
    (the reader's `aclose` waits for that).
    """
    stopped = threading.Event()

    async def produce(send: MemoryObjectSendStream[T]) -> None:
        def emit(item: T) -> None:
            if stopped.is_set():
                return
            try:
                anyio.from_thread.run(send.send, item)
            except BaseException:  # the reader closed (broken stream) or the loop cancelled the hand-over
                stopped.set()

        await run(work, emit, stopped)

    # Not cancelled: a cancelled wait for a worker thread returns while the thread still runs.
    return Producer(produce, buffer=buffer, on_close=stopped.set, cancel=False)


async def call_in_thread(work: Callable[[threading.Event], R], *, run: ThreadRunner = _in_thread) -> R:
    """The result of a blocking `work(stopped)`; cancelling the caller sets `stopped` and waits for the thread."""

    def one(emit: Emit[R], stopped: threading.Event) -> None:
        emit(work(stopped))

    async with produce_in_thread(one, run=run) as results:
        async for result in results:
            return result
    raise anyio.get_cancelled_exc_class()()  # unreachable unless cancelled: emit only drops once stopped


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """An anyio task group whose first failure cancels the other tasks and is raised as is (no group)."""
    failure: BaseException | None = None
    try:
        async with anyio.create_task_group() as group:
            yield group
    except BaseExceptionGroup as exc:
        failure = _first(exc)
    if failure is not None:
        raise failure


async def first_failure(*coroutines: Coroutine[Any, Any, Any]) -> None:
    """Run the coroutines concurrently; the first exception cancels the others and is raised as is."""
    async with task_group() as group:
        for coroutine in coroutines:
            group.start_soon(_awaited, coroutine)


async def _awaited(coroutine: Coroutine[Any, Any, Any]) -> None:
    await coroutine


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        return _first(exc) if isinstance(exc, BaseExceptionGroup) else exc
    return group


_END = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def iterate_in_thread(work: ThreadWork[T], *, buffer: int, name: str) -> Generator[T, None, None]:
    """Items a blocking `work(emit, stopped)` emits from a worker thread of its own, read from this thread.

    The same rule as `produce_in_thread` for callers that are threads themselves (a render pipeline
    stage): closing the generator sets `stopped`, `emit` drops from then on, and the close waits for
    the worker to return. At most `buffer` items wait unread.
    """
    if buffer < 1:
        raise ValueError(f"buffer must be >= 1, got {buffer}")
    items: queue.Queue[object] = queue.Queue(maxsize=buffer)
    stopped = threading.Event()

    def put(item: object) -> None:
        while not stopped.is_set():
            with contextlib.suppress(queue.Full):
                items.put(item, timeout=0.1)  # re-checks `stopped` every 0.1 s while the reader is behind
                return

    def run() -> None:
        try:
            work(put, stopped)
        except BaseException as exc:  # re-raised in the reader's thread
            put(_Failed(exc))
        else:
            put(_END)

    worker = threading.Thread(target=run, name=name, daemon=True)

    def read() -> Generator[T, None, None]:
        worker.start()
        try:
            while (item := items.get()) is not _END:
                if isinstance(item, _Failed):
                    raise item.error
                yield cast(T, item)  # everything else in the queue came from `emit`
        finally:
            stopped.set()
            worker.join()

    return read()
