from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from comps.core.errors import UpstreamError
from comps.core.sse import DONE, guard_stream, sse_event


def test_sse_event_format() -> None:
    assert sse_event({"a": 1}) == 'data: {"a":1}\n\n'
    assert sse_event("x", event="segment") == "event: segment\ndata: x\n\n"


@pytest.mark.anyio
async def test_failure_after_first_event_becomes_final_error_event() -> None:
    async def events() -> AsyncIterator[str]:
        yield sse_event({"n": 1})
        raise UpstreamError("tts failed", code="tts")

    out = [chunk async for chunk in guard_stream(events())]
    assert out[0] == 'data: {"n":1}\n\n'
    assert out[-1].startswith("event: error\n")
    assert json.loads(out[-1].split("data: ", 1)[1])["error"]["message"] == "tts failed"
    assert DONE not in out


@pytest.mark.anyio
async def test_clean_stream_ends_with_done() -> None:
    async def events() -> AsyncIterator[str]:
        yield sse_event({"n": 1})

    out = [chunk async for chunk in guard_stream(events())]
    assert out[-1] == DONE
