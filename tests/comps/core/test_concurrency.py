"""The producer/consumer bridge: order, back-pressure, failures, and the reader going away stopping the producer."""

from __future__ import annotations

import asyncio
import threading
import time

import anyio
import pytest
from anyio.streams.memory import MemoryObjectSendStream

from comps.core.concurrency import (
    UNBOUNDED,
    Producer,
    call_in_thread,
    first_failure,
    iterate_in_thread,
    produce_in_thread,
)

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


async def test_items_arrive_in_order_then_the_producer_failure() -> None:
    async def produce(send: MemoryObjectSendStream[int]) -> None:
        for i in range(3):
            await send.send(i)
        raise Boom("after three")

    seen = []
    with pytest.raises(Boom, match="after three"):
        async with Producer(produce) as items:
            async for item in items:
                seen.append(item)
    assert seen == [0, 1, 2]


async def test_unbounded_producer_sends_without_waiting() -> None:
    async def produce(send: MemoryObjectSendStream[int]) -> None:
        for i in range(100):
            send.send_nowait(i)

    async with Producer(produce, buffer=UNBOUNDED) as items:
        assert [i async for i in items] == list(range(100))


async def test_closing_the_reader_cancels_the_producer_at_once() -> None:
    cancelled = anyio.Event()

    async def produce(send: MemoryObjectSendStream[int]) -> None:
        try:
            await send.send(1)
            await anyio.sleep(3600)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    async with Producer(produce) as items:
        assert await items.__anext__() == 1
    assert cancelled.is_set()


async def test_cancelling_the_reader_cancels_the_producer() -> None:
    ended = anyio.Event()

    async def produce(send: MemoryObjectSendStream[int]) -> None:
        try:
            await anyio.sleep(3600)
        finally:
            ended.set()

    items = Producer(produce)

    async def read() -> None:
        async for _ in items:
            pass

    task = asyncio.create_task(read())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended.is_set()


async def test_a_reader_closed_from_another_task_still_stops_the_producer() -> None:
    ended = anyio.Event()

    async def produce(send: MemoryObjectSendStream[int]) -> None:
        try:
            while True:
                await send.send(0)
        finally:
            ended.set()

    items = Producer(produce)
    await items.__anext__()
    await asyncio.create_task(items.aclose())
    assert ended.is_set()


async def test_the_producer_waits_for_a_slow_reader() -> None:
    sent: list[int] = []

    async def produce(send: MemoryObjectSendStream[int]) -> None:
        for i in range(10):
            await send.send(i)
            sent.append(i)

    async with Producer(produce, buffer=2) as items:
        assert await items.__anext__() == 0
        await anyio.sleep(0.05)
        # read one; at most `buffer` more were sent and wait unread (plus the one in hand-over)
        assert len(sent) <= 1 + 2 + 1


async def test_thread_items_in_order_with_back_pressure() -> None:
    in_flight: list[int] = []

    def work(emit: object, stopped: threading.Event) -> None:
        for i in range(20):
            in_flight.append(i)
            emit(i)  # type: ignore[operator]

    async with produce_in_thread(work, buffer=1) as items:
        got = []
        async for item in items:
            got.append(item)
            assert len(in_flight) - len(got) <= 2  # the buffer plus the one being handed over
    assert got == list(range(20))


async def test_thread_failure_reaches_the_reader_after_its_items() -> None:
    def work(emit: object, stopped: threading.Event) -> None:
        emit("a")  # type: ignore[operator]
        raise Boom("in the thread")

    seen = []
    with pytest.raises(Boom, match="in the thread"):
        async with produce_in_thread(work) as items:
            async for item in items:
                seen.append(item)
    assert seen == ["a"]


async def test_reader_leaving_sets_stopped_and_waits_for_the_thread() -> None:
    returned = threading.Event()

    def work(emit: object, stopped: threading.Event) -> None:
        i = 0
        while not stopped.is_set():
            emit(i)  # type: ignore[operator]
            i += 1
        time.sleep(0.05)  # the reader's close must wait for this
        returned.set()

    async with produce_in_thread(work) as items:
        async for item in items:
            if item == 3:
                break
    assert returned.is_set()


async def test_call_in_thread_returns_the_result() -> None:
    assert await call_in_thread(lambda stopped: 6 * 7) == 42


async def test_cancelled_call_in_thread_sets_stopped_and_waits() -> None:
    started, returned = threading.Event(), threading.Event()

    def work(stopped: threading.Event) -> int:
        started.set()
        stopped.wait(5)
        returned.set()
        return 0

    task = asyncio.create_task(call_in_thread(work))
    await anyio.to_thread.run_sync(started.wait)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert returned.is_set()


async def test_first_failure_cancels_the_rest_and_raises_it_alone() -> None:
    cancelled = anyio.Event()

    async def slow() -> None:
        try:
            await anyio.sleep(3600)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    async def failing() -> None:
        await anyio.sleep(0.01)
        raise Boom("first")

    with pytest.raises(Boom, match="first") as info:
        await first_failure(slow(), failing())
    assert not isinstance(info.value, BaseExceptionGroup)
    assert cancelled.is_set()


async def test_first_failure_returns_when_all_succeed() -> None:
    done: list[int] = []

    async def one(i: int) -> None:
        done.append(i)

    await first_failure(one(1), one(2))
    assert sorted(done) == [1, 2]


def test_iterate_in_thread_order_failure_and_stop() -> None:
    def work(emit: object, stopped: threading.Event) -> None:
        for i in range(5):
            emit(i)  # type: ignore[operator]
        raise Boom("worker")

    seen = []
    with pytest.raises(Boom, match="worker"):
        for item in iterate_in_thread(work, buffer=2, name="t"):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]

    returned = threading.Event()

    def endless(emit: object, stopped: threading.Event) -> None:
        while not stopped.is_set():
            emit(0)  # type: ignore[operator]
        returned.set()

    items = iterate_in_thread(endless, buffer=1, name="t")
    assert next(items) == 0
    items.close()
    assert returned.is_set()
