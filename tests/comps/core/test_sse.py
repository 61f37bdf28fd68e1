from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from comps.core.errors import UpstreamError
from comps.core.sse import DONE, SseEvent, UnreadableEvent, guard_stream, parse_sse, sse_event


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


async def _lines(text: str) -> AsyncIterator[str]:
    for line in text.split("\n"):
        yield line


@pytest.mark.anyio
async def test_parse_reads_what_encode_writes_and_stops_at_done() -> None:
    text = sse_event({"a": 1}) + sse_event({"b": 2}, event="segment") + DONE + sse_event({"late": True})
    events = [e async for e in parse_sse(_lines(text))]
    assert events == [SseEvent(None, {"a": 1}), SseEvent("segment", {"b": 2})]


@pytest.mark.anyio
async def test_parse_joins_data_lines_and_ignores_comments_and_ids() -> None:
    text = ': keep-alive\nid: 7\nevent: answer\ndata: {"delta":\ndata:  "hi"}\n\ndata: {"last": 1}'
    events = [e async for e in parse_sse(_lines(text))]
    assert events == [SseEvent("answer", {"delta": "hi"}), SseEvent(None, {"last": 1})]


@pytest.mark.anyio
async def test_error_events_and_unreadable_data() -> None:
    text = 'event: error\ndata: {"error": {"message": "m"}}\n\ndata: {"error": "e"}\n\n'
    first, second = [e async for e in parse_sse(_lines(text))]
    assert first.error == {"message": "m"}
    assert second.error == "e"
    assert SseEvent("answer", {"delta": "x"}).error is None
    with pytest.raises(UnreadableEvent, match="not JSON"):
        [e async for e in parse_sse(_lines("data: {broken\n\n"))]
