from __future__ import annotations

import threading

import anyio
import pytest

from comps.core.errors import Unavailable
from comps.core.limits import InferenceQueue


@pytest.mark.anyio
async def test_queue_runs_work_off_the_event_loop() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=2)
    loop_thread = threading.get_ident()
    worker = await queue.run(threading.get_ident)
    assert worker != loop_thread


@pytest.mark.anyio
async def test_queue_refuses_beyond_capacity_with_retry_after() -> None:
    queue = InferenceQueue(concurrency=1, max_waiting=1, retry_after_s=4)
    release = threading.Event()
    results: list[str] = []

    def blocking() -> str:
        release.wait(5)
        return "done"

    async def call() -> None:
        results.append(await queue.run(blocking))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        tg.start_soon(call)
        await anyio.sleep(0.1)
        assert queue.busy == 2
        with pytest.raises(Unavailable) as refused:
            await queue.run(blocking)
        assert refused.value.retry_after == 4 and refused.value.status == 503
        release.set()
    assert results == ["done", "done"]
    assert queue.busy == 0
