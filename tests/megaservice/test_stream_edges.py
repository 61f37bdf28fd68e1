"""Stream edges: a node's items consumed one by one as they arrive, in order, with bounded concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from comps.core.errors import InvalidRequest, UpstreamError
from megaservice.orchestrator import ScheduleContext, ServiceOrchestrator
from megaservice.records import NodeEvent
from megaservice.service import MicroService


def words(data: Any) -> str | None:
    return data.get("word")


def source_node(toy: Any) -> MicroService:
    return MicroService(name=toy.name, endpoint="/stream", app=toy.app, stream_decoder=words)


def item_node(toy: Any, **kwargs: Any) -> MicroService:
    return MicroService(name=toy.name, endpoint="/run", app=toy.app, **kwargs)


def emitting(items: list[str], gate: Callable[[int], Any] | None = None) -> Any:
    async def handle(body: dict[str, Any]) -> AsyncIterator[dict[str, str]]:
        async def gen() -> AsyncIterator[dict[str, str]]:
            for index, item in enumerate(items):
                if gate is not None:
                    await gate(index)
                yield {"word": item}
                yield {"skipped": True}  # decoded to None: not an item

        return gen()

    return handle


@pytest.mark.anyio
async def test_items_come_out_in_order_when_later_items_finish_first(toy: Callable[..., Any]) -> None:
    count = 5
    finished = [asyncio.Event() for _ in range(count)]
    completion: list[int] = []

    async def uneven(body: dict[str, Any]) -> dict[str, Any]:
        index = int(body["text"].removeprefix("w"))
        if index + 1 < count:
            await finished[index + 1].wait()  # item k waits for item k+1: they finish last to first
        completion.append(index)
        finished[index].set()
        return {"audio": body["text"].upper()}

    async def relabel(body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"video": body["audio"] + ".mp4"}

    llm = toy("llm", emitting([f"w{i}" for i in range(count)]))
    tts, animation = toy("tts", uneven), toy("animation", relabel)
    events: list[NodeEvent] = []
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(source_node(llm)).add(item_node(tts)).add(item_node(animation))
        orchestrator.flow_to("llm", "tts", adapter=lambda w, ctx: {"text": w}, stream=True, concurrency=count)
        orchestrator.flow_to("tts", "animation", adapter=lambda r, ctx: r, stream=True, concurrency=2)
        async with asyncio.timeout(10):
            results, graph = await orchestrator.schedule({"prompt": "go"}, observer=events.append)
    assert completion == [4, 3, 2, 1, 0]
    assert results["llm"] == [f"w{i}" for i in range(count)]
    assert results["tts"] == [{"audio": f"W{i}"} for i in range(count)]
    assert results["animation"] == [{"video": f"W{i}.mp4"} for i in range(count)]
    segments = [(e.index, e.value, e.request) for e in events if e.kind == "item" and e.node == "animation"]
    assert segments == [(i, {"video": f"W{i}.mp4"}, {"audio": f"W{i}"}) for i in range(count)]
    assert graph.records["tts"].items == count and len(graph.records["tts"].item_durations_s) == count
    assert graph.records["animation"].attempts == count


@pytest.mark.anyio
async def test_the_next_node_starts_on_the_first_item_before_the_stream_ends(toy: Callable[..., Any]) -> None:
    # The source sends item 1 only after the consumer has received item 0: a buffered stream would hang.
    consumed = asyncio.Event()

    async def gate(index: int) -> None:
        if index == 1:
            await consumed.wait()

    async def consume(body: dict[str, Any]) -> dict[str, Any]:
        consumed.set()
        return {"got": body["text"]}

    llm, tts = toy("llm", emitting(["first", "second"], gate)), toy("tts", consume)
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(source_node(llm)).add(item_node(tts))
        orchestrator.flow_to("llm", "tts", adapter=lambda w, ctx: {"text": w}, stream=True)
        async with asyncio.timeout(10):
            results, _ = await orchestrator.schedule({})
    assert results["tts"] == [{"got": "first"}, {"got": "second"}]


@pytest.mark.anyio
async def test_items_in_flight_never_exceed_the_edge_concurrency(toy: Callable[..., Any]) -> None:
    in_flight, peak = 0, 0
    pair_seen = asyncio.Event()

    async def track(body: dict[str, Any]) -> dict[str, Any]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 2:
            pair_seen.set()
        await pair_seen.wait()
        await asyncio.sleep(0)
        in_flight -= 1
        return {"n": body["text"]}

    llm, tts = toy("llm", emitting([str(i) for i in range(7)])), toy("tts", track)
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(source_node(llm)).add(item_node(tts))
        orchestrator.flow_to("llm", "tts", adapter=lambda w, ctx: {"text": w}, stream=True, concurrency=2)
        async with asyncio.timeout(10):
            results, _ = await orchestrator.schedule({})
    assert peak == 2
    assert [r["n"] for r in results["tts"]] == [str(i) for i in range(7)]


@pytest.mark.anyio
async def test_regroup_turns_tokens_into_sentences_before_the_next_node(toy: Callable[..., Any]) -> None:
    async def sentences(tokens: AsyncIterator[Any], ctx: ScheduleContext) -> AsyncIterator[str]:
        buffer = ""
        async for token in tokens:
            buffer += token
            if buffer.endswith("."):
                yield buffer.strip()
                buffer = ""
        if buffer.strip():
            yield buffer.strip()

    async def say(body: dict[str, Any]) -> dict[str, Any]:
        return {"said": body["text"]}

    llm = toy("llm", emitting(["Hello", " there.", " How", " are", " you.", " Bye"]))
    tts = toy("tts", say)
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(source_node(llm)).add(item_node(tts))
        orchestrator.flow_to("llm", "tts", adapter=lambda s, ctx: {"text": s}, stream=True, regroup=sentences)
        results, _ = await orchestrator.schedule({})
    assert [r["said"] for r in results["tts"]] == ["Hello there.", "How are you.", "Bye"]


@pytest.mark.anyio
async def test_a_failing_item_fails_the_schedule_naming_its_stage(toy: Callable[..., Any]) -> None:
    async def refuse_second(body: dict[str, Any]) -> Any:
        if body["text"] == "b":
            return 400, {"error": {"message": "unsupported text", "type": "invalid_request"}}
        return {"ok": body["text"]}

    events: list[NodeEvent] = []
    llm, tts = toy("llm", emitting(["a", "b", "c"])), toy("tts", refuse_second)
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(source_node(llm)).add(item_node(tts))
        orchestrator.flow_to("llm", "tts", adapter=lambda w, ctx: {"text": w}, stream=True, concurrency=1)
        with pytest.raises(InvalidRequest, match="^tts: unsupported text"):
            await orchestrator.schedule({}, observer=events.append)
    assert [(e.kind, e.index) for e in events if e.node == "tts"] == [("started", None), ("item", 0), ("failed", None)]


@pytest.mark.anyio
async def test_an_in_band_stream_error_names_the_stage(toy: Callable[..., Any]) -> None:
    async def broken(body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        async def gen() -> AsyncIterator[dict[str, Any]]:
            yield {"word": "partial"}
            yield {"error": {"message": "generation failed", "type": "internal"}}

        return gen()

    async def say(body: dict[str, Any]) -> dict[str, Any]:
        return {"said": body["text"]}

    llm, tts = toy("llm", broken), toy("tts", say)
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(source_node(llm)).add(item_node(tts))
        orchestrator.flow_to("llm", "tts", adapter=lambda w, ctx: {"text": w}, stream=True)
        with pytest.raises(UpstreamError, match="^llm: generation failed"):
            await orchestrator.schedule({})
