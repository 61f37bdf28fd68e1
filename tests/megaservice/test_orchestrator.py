from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import BaseModel

from comps.core.errors import InvalidRequest, NotFound, Timeout, Unavailable, Unprocessable, UpstreamError
from megaservice.dag import GraphError
from megaservice.orchestrator import ScheduleContext, ServiceOrchestrator
from megaservice.records import NodeEvent
from megaservice.service import MicroService


def node(toy: Any, **kwargs: Any) -> MicroService:
    return MicroService(name=toy.name, endpoint="/run", app=toy.app, **kwargs)


def error_body(message: str, kind: str = "invalid_request") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": "bad", "param": "text"}}


@pytest.mark.anyio
async def test_chain_runs_in_order_and_records_each_node(toy: Callable[..., Any], echo_handler: Any) -> None:
    a, b, c = toy("a", echo_handler("a")), toy("b", echo_handler("b")), toy("c", echo_handler("c"))
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(node(a)).add(node(b)).add(node(c))
        orchestrator.flow_to(node(a), node(b)).flow_to("b", "c")
        results, graph = await orchestrator.schedule({"path": ["in"]})
    assert results["c"] == {"path": ["in", "a", "b", "c"]}
    assert [a.calls, b.calls, c.calls] == [[{"path": ["in"]}], [{"path": ["in", "a"]}], [{"path": ["in", "a", "b"]}]]
    assert graph.all_leaves() == ["c"]
    assert {name: r.status for name, r in graph.records.items()} == {"a": "ok", "b": "ok", "c": "ok"}
    assert set(graph.timings()) == {"a", "b", "c"}
    assert all(r.attempts == 1 for r in graph.records.values())


@pytest.mark.anyio
async def test_independent_branches_run_concurrently_and_join(toy: Callable[..., Any], echo_handler: Any) -> None:
    # Each branch waits until the other has started: run one after the other, they would never finish.
    entered = {"left": asyncio.Event(), "right": asyncio.Event()}

    def branch(name: str, other: str) -> Any:
        async def handle(body: dict[str, Any]) -> dict[str, Any]:
            entered[name].set()
            await entered[other].wait()
            return {name: body["path"]}

        return handle

    root, join = toy("root", echo_handler("root")), toy("join", echo_handler("join"))
    left, right = toy("left", branch("left", "right")), toy("right", branch("right", "left"))
    async with ServiceOrchestrator() as orchestrator:
        for t in (root, left, right, join):
            orchestrator.add(node(t))
        orchestrator.flow_to("root", "left").flow_to("root", "right")
        orchestrator.flow_to("left", "join").flow_to("right", "join")
        async with asyncio.timeout(10):
            results, graph = await orchestrator.schedule({"path": []})
    assert join.calls == [{"left": ["root"], "right": ["root"]}]
    assert results["join"] == {"path": ["join"]}
    assert graph.all_leaves() == ["join"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "error_class", "expected_status"),
    [(400, InvalidRequest, 400), (404, NotFound, 404), (422, Unprocessable, 422), (409, InvalidRequest, 409)],
)
async def test_downstream_4xx_keeps_its_class_names_the_stage_and_is_not_retried(
    toy: Callable[..., Any], echo_handler: Any, status: int, error_class: type, expected_status: int
) -> None:
    async def refuse(body: dict[str, Any]) -> Any:
        return status, error_body("text is empty")

    a, b = toy("asr", echo_handler("a")), toy("tts", refuse)
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(node(a)).add(node(b, retries=3)).flow_to("asr", "tts")
        with pytest.raises(error_class) as caught:
            await orchestrator.schedule({})
    assert caught.value.status == expected_status
    assert caught.value.message.startswith("tts: text is empty")
    assert caught.value.param == "text"
    assert len(b.calls) == 1


@pytest.mark.anyio
async def test_downstream_5xx_is_a_502_naming_the_stage_after_retries(toy: Callable[..., Any]) -> None:
    async def crash(body: dict[str, Any]) -> Any:
        return 500, error_body("model exploded", "internal")

    llm = toy("llm", crash)
    async with ServiceOrchestrator(backoff_s=0.001) as orchestrator:
        orchestrator.add(node(llm, retries=2))
        with pytest.raises(UpstreamError) as caught:
            await orchestrator.schedule({})
    assert caught.value.status == 502
    assert "llm: model exploded (HTTP 500)" in caught.value.message
    assert len(llm.calls) == 3


@pytest.mark.anyio
async def test_an_unhandled_exception_in_an_in_process_node_is_a_502(toy: Callable[..., Any]) -> None:
    async def bug(body: dict[str, Any]) -> Any:
        raise RuntimeError("bug")

    broken = toy("animation", bug)
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(node(broken, retries=0))
        with pytest.raises(UpstreamError, match=r"^animation: .*HTTP 500"):
            await orchestrator.schedule({})


@pytest.mark.anyio
async def test_a_retryable_failure_is_retried_and_then_succeeds(toy: Callable[..., Any]) -> None:
    answers = [(503, error_body("loading", "unavailable")), {"ok": True}]

    async def flaky(body: dict[str, Any]) -> Any:
        return answers.pop(0)

    asr = toy("asr", flaky)
    async with ServiceOrchestrator(backoff_s=0.001) as orchestrator:
        orchestrator.add(node(asr, retries=1))
        results, graph = await orchestrator.schedule({})
    assert results["asr"] == {"ok": True}
    assert graph.records["asr"].attempts == 2


@pytest.mark.anyio
async def test_a_slow_node_times_out_with_504_naming_the_stage(toy: Callable[..., Any]) -> None:
    never = asyncio.Event()

    async def hang(body: dict[str, Any]) -> Any:
        await never.wait()

    animation = toy("animation", hang)
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(node(animation, timeout_s=0.05, retries=0))
        with pytest.raises(Timeout) as caught:
            await orchestrator.schedule({})
    assert caught.value.status == 504
    assert caught.value.message == "animation: no answer within 0.05 s"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.anyio
async def test_connection_refused_is_503_naming_the_stage_and_retried() -> None:
    port = _closed_port()
    events: list[NodeEvent] = []
    async with ServiceOrchestrator(backoff_s=0.001) as orchestrator:
        orchestrator.add(MicroService(name="asr", host="127.0.0.1", port=port, endpoint="/v1/asr", retries=2))
        with pytest.raises(Unavailable) as caught:
            await orchestrator.schedule({"audio": "x"}, observer=events.append)
    assert caught.value.status == 503
    assert caught.value.message.startswith(f"asr: unreachable at http://127.0.0.1:{port}/v1/asr")
    assert [(e.kind, e.node) for e in events] == [("started", "asr"), ("failed", "asr")]


class Reply(BaseModel):
    answer: str


@pytest.mark.anyio
async def test_a_2xx_body_breaking_the_contract_is_502(toy: Callable[..., Any], echo_handler: Any) -> None:
    llm = toy("llm", echo_handler("llm"))
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(node(llm, response_model=Reply, retries=0))
        with pytest.raises(UpstreamError, match="llm: answered with an unexpected body"):
            await orchestrator.schedule({})


@pytest.mark.anyio
async def test_typed_adapters_map_outputs_to_inputs(toy: Callable[..., Any]) -> None:
    async def answer(body: dict[str, Any]) -> dict[str, str]:
        return {"answer": body["question"].upper()}

    class Question(BaseModel):
        question: str

    async def speak(body: dict[str, Any]) -> dict[str, str]:
        return {"answer": f"spoken {body['question']}"}

    llm, tts = toy("llm", answer), toy("tts", speak)

    def to_speech(reply: Reply, ctx: ScheduleContext) -> Question:
        return Question(question=f"{reply.answer}{ctx.llm_parameters}{ctx.options['suffix']}")

    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(node(llm, response_model=Reply, request_model=Question))
        orchestrator.add(node(tts, response_model=Reply))
        orchestrator.flow_to("llm", "tts", adapter=to_speech)
        results, _ = await orchestrator.schedule({"question": "hi"}, "!", suffix="?")
    assert results["llm"] == Reply(answer="HI")
    assert results["tts"] == Reply(answer="spoken HI!?")


@pytest.mark.anyio
async def test_invalid_initial_inputs_are_400_naming_the_stage(toy: Callable[..., Any], echo_handler: Any) -> None:
    llm = toy("llm", echo_handler("llm"))
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(node(llm, request_model=Reply))
        with pytest.raises(InvalidRequest, match="llm: answer: Field required"):
            await orchestrator.schedule({})
    assert llm.calls == []


@pytest.mark.anyio
async def test_provided_results_skip_the_node_and_prune_what_only_feeds_it(
    toy: Callable[..., Any], echo_handler: Any
) -> None:
    pre, asr, llm = toy("pre", echo_handler("pre")), toy("asr", echo_handler("asr")), toy("llm", echo_handler("llm"))
    async with ServiceOrchestrator() as orchestrator:
        orchestrator.add(node(pre)).add(node(asr)).add(node(llm)).flow_to("pre", "asr").flow_to("asr", "llm")
        results, graph = await orchestrator.schedule(None, provided={"asr": {"path": ["typed"]}})
    assert results["llm"] == {"path": ["typed", "llm"]}
    assert pre.calls == [] and asr.calls == []
    assert graph.dag.nodes == ["asr", "llm"]
    assert graph.records["asr"].status == "provided"
    assert set(graph.timings()) == {"llm"}


def test_graph_mistakes_are_refused_when_the_graph_is_built(toy: Callable[..., Any], echo_handler: Any) -> None:
    orchestrator = ServiceOrchestrator()
    a, b, c = (toy(n, echo_handler(n)) for n in "abc")
    orchestrator.add(node(a)).add(node(b)).add(node(c))
    orchestrator.flow_to("a", "b").flow_to("b", "c")
    with pytest.raises(GraphError, match="cycle"):
        orchestrator.flow_to("c", "a")
    with pytest.raises(GraphError, match="unknown node 'd'"):
        orchestrator.flow_to("c", "d")
    with pytest.raises(GraphError, match="does not emit a stream"):
        orchestrator.flow_to("a", "c", stream=True)


async def _never(_: AsyncIterator[Any], __: ScheduleContext) -> AsyncIterator[Any]:
    yield None  # pragma: no cover


def test_regroup_needs_a_stream_edge(toy: Callable[..., Any], echo_handler: Any) -> None:
    orchestrator = ServiceOrchestrator()
    orchestrator.add(node(toy("a", echo_handler("a")))).add(node(toy("b", echo_handler("b"))))
    with pytest.raises(GraphError, match="regroup needs stream=True"):
        orchestrator.flow_to("a", "b", regroup=_never)
