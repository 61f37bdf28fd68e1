"""Faults with real processes: every service in turn killed during and before a request, answering garbage, and
stopped past its timeout. The gateway answers 502/503/504 in the error envelope naming the stage (an in-band
`error` event on a stream), the next request after the service returns succeeds, and the gateway keeps no
file descriptor, thread or temp file from the faults.

The services and the gateway are `avatarchat serve` processes on the real small models (support.process_stack).
A kill is SIGKILL (no clean-up, as in a crash); "slow" is SIGSTOP (the kernel still accepts the connection,
nothing answers); garbage comes from a real HTTP server process on the service's port (support.garbage_server).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.garbage_server import GARBAGE
from support.metrics import sample
from support.models import speak_wav
from support.process_stack import SERVICES, Node, ProcessStack
from support.reliability import record

from comps.core.sse import parse_sse

pytestmark = pytest.mark.slow

# The gateway's per-attempt node timeouts here: a few times what each stage needs for the short answers of
# these tests on two busy cores (asr < 1 s for a 2 s question, llm < 1.5 s for 8 tokens, tts < 1 s, animation
# ~3 s at 5 fps), and small, because a stopped stage costs the suite its timeout twice (whole and stream).
TIMEOUTS = {"asr": 4.0, "llm": 6.0, "tts": 4.0, "animation": 12.0}
GATEWAY_ENV = {"GATEWAY_RETRIES": "0"} | {f"GATEWAY_{s.upper()}_TIMEOUT_S": str(t) for s, t in TIMEOUTS.items()}
SHORT = {"max_tokens": 8, "fps": 5, "detailed": True}
# Long enough that the stage under test is still at work when it is killed (as soon as it is seen working).
LONG = {"max_tokens": 48, "fps": 5, "detailed": True}
QUESTION = "What is the capital of France?"
STORY = "Write a long story about a dragon."
LONG_SPEECH = " ".join(
    [
        "I would like to ask you something about the history of the old lighthouse by the harbour.",
        "My grandmother told me it was built more than two hundred years ago by the fishermen of the town,",
        "and that its light could be seen from the islands far out at sea on a clear winter night.",
        "Is that really true, and who keeps the light burning today?",
    ]
)
BUSY_CPU_S = 0.25  # CPU seconds a service spends beyond its idle baseline once it works on our request
CLIENT_TIMEOUT_S = 300.0  # a hang guard, not a measurement
STATUS_TYPE = {502: "upstream", 503: "unavailable", 504: "timeout"}
SETTLE_S = 90.0  # idle pooled connections (aiohttp: 15 s) and idle worker threads (10 s) end well within this
QUIET_S = 20.0  # a baseline's counts hold this long: longer than any idle pool keeps a connection


@functools.cache
def spoken(text: str) -> str:
    return base64.b64encode(speak_wav(text)).decode()


def question(stage: str, *, long: bool = False) -> dict[str, Any]:
    """A typed question, or a spoken one where the stage under test is ASR (a typed one skips it)."""
    if stage == "asr":
        return {"audio": spoken(LONG_SPEECH if long else QUESTION), **SHORT}
    return {"text": STORY, **LONG} if long else {"text": QUESTION, **SHORT}


def snapshot(gateway: Node) -> dict[str, Any]:
    fds = gateway.open_fds()
    return {
        "fds": len(fds),
        "sockets": sum(fd.startswith("socket:") for fd in fds),
        "files": [fd for fd in fds if not fd.startswith("socket:")],
        "threads": gateway.threads(),
        "temp_files": gateway.temp_files(),
        "tasks": event_loop_tasks(gateway),
    }


def event_loop_tasks(gateway: Node) -> float:
    """The asyncio tasks alive in the gateway's event loop (its /metrics; the scrape's own task included)."""
    with httpx.Client(base_url=gateway.url, timeout=10, trust_env=False) as http:
        return sample(http.get("/metrics").text, "avatarchat_event_loop_tasks", service="avatarchatbot")


STRICT = ("files", "threads", "temp_files", "tasks")  # what must come back exactly to its idle count


def no_leak(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Nothing left behind: the same files, threads, temp files and tasks; sockets beyond the listener at most
    one idle pooled connection per service more (the pools keep one after the last request, until they expire)."""
    same = all(after[name] == before[name] for name in STRICT)
    return same and after["sockets"] <= before["sockets"] + len(SERVICES)


def settled(gateway: Node, reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """The gateway's counts once idle: equal to `reference`, or (for a baseline) unchanged for QUIET_S.

    A baseline must outlast the connections the gateway keeps pooled to the services after a request
    (aiohttp closes them after 15 s idle), or it counts them and a later idle count comes out lower.
    """
    deadline = time.monotonic() + SETTLE_S
    previous, since = snapshot(gateway), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(2.0 if reference is None else 0.5)
        current = snapshot(gateway)
        if reference is not None and no_leak(reference, current):
            return current
        if current != previous:
            previous, since = current, time.monotonic()
        elif reference is None and time.monotonic() - since >= QUIET_S:
            return current
    return previous


@pytest.fixture(scope="module")
def ledger() -> Iterator[dict[str, Any]]:
    figures: dict[str, Any] = {"timeouts_s": TIMEOUTS, "retries": 0, "faults": [], "gateway": {}}
    yield figures
    faults = figures["faults"]
    ok = sum(f["named"] for f in faults)
    recovered = sum(f["recovered"] for f in figures.get("recoveries", []))
    summary = f"{len(faults)} faults over {len(SERVICES)} services, {ok} answered 5xx naming the stage; "
    summary += f"{recovered} recoveries"
    if {"before", "after"} <= set(figures["gateway"]):
        before, after = figures["gateway"]["before"], figures["gateway"]["after"]
        counts = ("fds", "threads", "tasks")
        summary += "; gateway " + ", ".join(f"{name} {before[name]} -> {after[name]}" for name in counts)
        summary += f", temp files {len(before['temp_files'])} -> {len(after['temp_files'])}"
    record("faults", figures, summary)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, embedded_model_cache: Path, ledger: dict[str, Any]
) -> Iterator[ProcessStack]:
    with ProcessStack(tmp_path_factory.mktemp("faults"), embedded_model_cache, GATEWAY_ENV) as stack:
        ledger["gateway"]["idle"] = snapshot(stack.gateway)
        asyncio.run(_warm_up(stack))
        ledger["gateway"]["before"] = settled(stack.gateway)
        yield stack


async def _warm_up(stack: ProcessStack) -> None:
    """One spoken and one streamed answer, so every pool the gateway keeps exists before the baseline is taken."""
    async with client(stack) as http:
        response = await http.post("/v1/avatarchatbot", json=question("asr"))
        assert response.status_code == 200, response.text
        events = await stream(http, question("llm"))
        assert events[-1][0] == "done", events


@asynccontextmanager
async def client(stack: ProcessStack) -> AsyncIterator[httpx.AsyncClient]:
    timeout = httpx.Timeout(CLIENT_TIMEOUT_S)
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=timeout, trust_env=False) as http:
        yield http


async def stream(http: httpx.AsyncClient, body: dict[str, Any], *, kill: Node | None = None) -> list[tuple[Any, Any]]:
    """The events of one streamed answer; with `kill`, that process is killed once the first answer delta arrives."""
    events: list[tuple[Any, Any]] = []
    async with http.stream("POST", "/v1/avatarchatbot/stream", json=body) as response:
        assert response.status_code == 200, await response.aread()
        async for event in parse_sse(response.aiter_lines()):
            events.append((event.event, event.data))
            if kill is not None and event.event == "answer" and kill.running():
                kill.kill()
    return events


async def killed_mid_request(http: httpx.AsyncClient, node: Node, body: dict[str, Any]) -> httpx.Response:
    """Kill `node` once it is seen working on the request (its CPU time rising above its idle baseline)."""
    idle = node.cpu_seconds()
    answer = asyncio.ensure_future(http.post("/v1/avatarchatbot", json=body))
    while node.cpu_seconds() - idle < BUSY_CPU_S:
        assert not answer.done(), f"{node.name} was never seen working on the request: {answer.result().text}"
        await asyncio.sleep(0.02)
    node.kill()
    return await answer


def named(stage: str, response: httpx.Response, statuses: set[int]) -> dict[str, Any]:
    """The error envelope of a 502/503/504 naming `stage`."""
    assert response.status_code in statuses, (response.status_code, response.text)
    error: dict[str, Any] = response.json()["error"]
    assert {"message", "type", "code", "param"} <= set(error), error
    assert error["message"].startswith(f"{stage}: "), error
    assert error["type"] == STATUS_TYPE[response.status_code], error
    return error


def named_in_band(stage: str, events: list[tuple[Any, Any]], types: set[str]) -> dict[str, Any]:
    """The stream's final `error` event naming `stage` (and no `done` before it)."""
    names = [name for name, _ in events]
    assert names[-1] == "error" and "done" not in names, events
    error: dict[str, Any] = events[-1][1]["error"]
    assert error["message"].startswith(f"{stage}: ") and error["type"] in types, error
    return error


def note(ledger: dict[str, Any], stage: str, fault: str, path: str, error: dict[str, Any], started: float) -> None:
    status = {v: k for k, v in STATUS_TYPE.items()}[error["type"]]
    ledger["faults"].append(
        {
            "stage": stage, "fault": fault, "path": path, "status": status, "code": error["code"],
            "message": error["message"][:200], "named": True, "seconds": round(time.monotonic() - started, 2),
        }
    )  # fmt: skip


async def succeeds(http: httpx.AsyncClient, stage: str, ledger: dict[str, Any], after: str) -> None:
    response = await http.post("/v1/avatarchatbot", json=question(stage))
    assert response.status_code == 200, response.text
    assert response.json()["answer"].strip() and response.json()["frames"] > 0
    ledger.setdefault("recoveries", []).append({"stage": stage, "after": after, "recovered": True})


@pytest.mark.anyio
@pytest.mark.parametrize("stage", SERVICES)
async def test_each_fault_of_a_stage_is_a_5xx_naming_it_and_the_next_request_succeeds(
    stack: ProcessStack, stage: str, ledger: dict[str, Any]
) -> None:
    node = stack[stage]
    async with client(stack) as http:
        if stage in ("llm", "animation"):  # they are at work while a stream plays: killed once the answer flows
            started = time.monotonic()
            events = await stream(http, question(stage, long=True), kill=node)
            error = named_in_band(stage, events, {"upstream", "unavailable"})
            note(ledger, stage, "killed mid-request", "stream", error, started)
            stack.restart(stage)

        started = time.monotonic()
        response = await killed_mid_request(http, node, question(stage, long=True))
        note(ledger, stage, "killed mid-request", "whole", named(stage, response, {502, 503}), started)

        started = time.monotonic()  # it stays down: the next requests meet it dead
        response = await http.post("/v1/avatarchatbot", json=question(stage))
        note(ledger, stage, "killed before the request", "whole", named(stage, response, {503}), started)
        started = time.monotonic()
        error = named_in_band(stage, await stream(http, question(stage)), {"unavailable"})
        note(ledger, stage, "killed before the request", "stream", error, started)

        for mode in GARBAGE:
            with stack.garbage(stage, mode):
                started = time.monotonic()
                response = await http.post("/v1/avatarchatbot", json=question(stage))
                note(ledger, stage, f"answering garbage ({mode})", "whole", named(stage, response, {502}), started)
                if mode == "html":
                    started = time.monotonic()
                    error = named_in_band(stage, await stream(http, question(stage)), {"upstream", "unavailable"})
                    note(ledger, stage, f"answering garbage ({mode})", "stream", error, started)

        stack.restart(stage)
        await succeeds(http, stage, ledger, "restart")

        node.pause()
        try:
            started = time.monotonic()
            response = await http.post("/v1/avatarchatbot", json=question(stage))
            note(ledger, stage, "slow past its timeout", "whole", named(stage, response, {504}), started)
            started = time.monotonic()
            error = named_in_band(stage, await stream(http, question(stage)), {"timeout"})
            note(ledger, stage, "slow past its timeout", "stream", error, started)
        finally:
            node.resume()
        await succeeds(http, stage, ledger, "resume")


def test_the_faults_leave_no_descriptor_thread_temp_file_or_task_in_the_gateway(
    stack: ProcessStack, ledger: dict[str, Any]
) -> None:
    """Counted before the faults (after a warm-up) and after them, once idle: fds, threads, temp files, tasks."""
    before = ledger["gateway"]["before"]
    after = ledger["gateway"]["after"] = settled(stack.gateway, before)
    assert {name: after[name] for name in STRICT} == {name: before[name] for name in STRICT}
    assert no_leak(before, after), (before["sockets"], after["sockets"])
