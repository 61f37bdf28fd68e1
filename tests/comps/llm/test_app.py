"""The LLM service over HTTP with the real tiny model: answers, streaming, sampling controls, limits, bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from openai import AsyncOpenAI

from comps.llm.app import create_app
from comps.llm.backends.transformers import TransformersBackend
from comps.llm.settings import LlmSettings

HELLO = [{"role": "user", "content": "Hello, how are you?"}]


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) of every server-sent event."""
    events = []
    for block in text.strip().split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        events.append((name, "\n".join(data)))
    return events


def stream_text(text: str) -> tuple[str, list[dict[str, Any]]]:
    """The streamed answer and its chunks; checks the stream ends with [DONE]."""
    events = parse_sse(text)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    content = "".join(choice["delta"].get("content") or "" for c in chunks for choice in c["choices"])
    return content, chunks


@asynccontextmanager
async def serve(
    settings: LlmSettings, backend: TransformersBackend | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(settings, backend)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client, app


@pytest.fixture
def settings(llm_settings: LlmSettings) -> LlmSettings:
    return llm_settings.model_copy(update={"system_prompt": "Answer briefly."})


@pytest.mark.anyio
async def test_lifespan_loads_the_model_by_path_and_answers(settings: LlmSettings, tiny_llm_dir: Path) -> None:
    async with serve(settings) as (client, _):
        assert (await client.get("/ready")).status_code == 200
        models = (await client.get("/v1/models")).json()
        assert models["data"][0]["id"] == str(tiny_llm_dir)
        assert models["data"][0]["max_model_len"] == 512
        response = await client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 6})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["message"]["content"].strip()
    assert body["usage"]["completion_tokens"] == 6
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 6


@pytest.mark.anyio
async def test_temperature_zero_is_greedy_and_stream_matches(
    settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    request = {"messages": HELLO, "max_tokens": 10, "temperature": 0}
    async with serve(settings, make_backend()) as (client, _):
        first = (await client.post("/v1/chat/completions", json=request)).json()
        second = (await client.post("/v1/chat/completions", json=request)).json()
        streamed = await client.post(
            "/v1/chat/completions", json={**request, "stream": True, "stream_options": {"include_usage": True}}
        )
    text = first["choices"][0]["message"]["content"]
    assert text and text == second["choices"][0]["message"]["content"]
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    content, chunks = stream_text(streamed.text)
    assert content == text
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 10


@pytest.mark.anyio
async def test_seed_reproduces_sampling(
    settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    def ask(seed: int) -> dict[str, Any]:
        return {"messages": HELLO, "max_tokens": 10, "temperature": 1.5, "seed": seed}

    async with serve(settings, make_backend()) as (client, _):
        texts = [
            (await client.post("/v1/chat/completions", json=ask(seed))).json()["choices"][0]["message"]["content"]
            for seed in (7, 7, 8)
        ]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


@pytest.mark.anyio
async def test_stop_string_ends_the_answer_before_it(
    settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    request = {"messages": HELLO, "max_tokens": 12, "temperature": 0}
    async with serve(settings, make_backend()) as (client, _):
        full = (await client.post("/v1/chat/completions", json=request)).json()["choices"][0]["message"]["content"]
        words = full.split()
        stop = words[len(words) // 2]
        expected = full[: full.index(stop)]
        cut = (await client.post("/v1/chat/completions", json={**request, "stop": [stop]})).json()
        streamed = await client.post("/v1/chat/completions", json={**request, "stop": stop, "stream": True})
    assert cut["choices"][0]["message"]["content"] == expected
    assert cut["choices"][0]["finish_reason"] == "stop"
    content, chunks = stream_text(streamed.text)
    assert content == expected
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.anyio
async def test_official_openai_client_streams(
    settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    async with serve(settings, make_backend()) as (_, app):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t/v1")
        client = AsyncOpenAI(base_url="http://t/v1", api_key="unused", http_client=http)
        whole = await client.chat.completions.create(model="tiny-llm", messages=HELLO, max_tokens=8, temperature=0)
        stream = await client.chat.completions.create(
            model="tiny-llm", messages=HELLO, max_tokens=8, temperature=0, stream=True
        )
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        await client.close()
    assert whole.choices[0].message.content
    assert "".join(pieces) == whole.choices[0].message.content
    assert whole.model == "tiny-llm"


@pytest.mark.anyio
async def test_prompt_plus_max_tokens_beyond_context_is_400_with_both_numbers(
    settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    async with serve(settings, make_backend()) as (client, _):
        plain = await client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 600})
        streamed = await client.post(
            "/v1/chat/completions", json={"messages": HELLO, "max_tokens": 600, "stream": True}
        )
    for response in (plain, streamed):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "context_length_exceeded"
        prompt_tokens = int(error["message"].split("the prompt has ")[1].split()[0])
        assert "512 tokens" in error["message"] and "600 more" in error["message"]
        assert f"({prompt_tokens + 600} > 512)" in error["message"]


@pytest.mark.anyio
async def test_persona_is_prepended_only_without_a_system_message(
    llm_settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    long_persona = llm_settings.model_copy(update={"system_prompt": "You are a friendly avatar. " * 10})
    async with serve(long_persona, make_backend()) as (client, _):
        with_persona = (await client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 1})).json()
        own_system = [{"role": "system", "content": "Be brief."}, *HELLO]
        without = (await client.post("/v1/chat/completions", json={"messages": own_system, "max_tokens": 1})).json()
        developer = [{"role": "developer", "content": "Be brief."}, *HELLO]
        as_dev = (await client.post("/v1/chat/completions", json={"messages": developer, "max_tokens": 1})).json()
    assert with_persona["usage"]["prompt_tokens"] > without["usage"]["prompt_tokens"] + 30
    assert as_dev["usage"]["prompt_tokens"] == without["usage"]["prompt_tokens"]


BAD_REQUESTS = [
    ({"messages": []}, "messages"),
    ({}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": 42}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": None}]}, "messages.0.content"),
    (
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
        "messages.0.content",
    ),
    ({"messages": [{"role": "user"}]}, "messages.0.content"),
    ({"messages": "hello"}, "messages"),
    ({"messages": HELLO, "max_tokens": -1}, "max_tokens"),
    ({"messages": HELLO, "max_tokens": 0}, "max_tokens"),
    ({"messages": HELLO, "max_tokens": 10**9}, "max_tokens"),
    ({"messages": HELLO, "max_tokens": "many"}, "max_tokens"),
    ({"messages": HELLO, "temperature": -0.1}, "temperature"),
    ({"messages": HELLO, "temperature": 2.5}, "temperature"),
    ({"messages": HELLO, "top_p": 0}, "top_p"),
    ({"messages": HELLO, "top_k": 0}, "top_k"),
    ({"messages": HELLO, "presence_penalty": 3}, "presence_penalty"),
    ({"messages": HELLO, "repetition_penalty": 0}, "repetition_penalty"),
    ({"messages": HELLO, "repetition_penalty": 11}, "repetition_penalty"),
    ({"messages": HELLO, "seed": 2**63}, "seed"),
    ({"messages": HELLO, "max_completion_tokens": 0}, "max_completion_tokens"),
    ({"messages": HELLO, "stop": [""]}, "stop"),
    ({"messages": HELLO, "n": 2}, "n"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("body", "param"), BAD_REQUESTS)
async def test_bad_input_is_400_in_the_envelope(
    body: dict[str, Any], param: str, settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    async with serve(settings, make_backend()) as (client, _):
        response = await client.post("/v1/chat/completions", json=body)
        not_json = await client.post(
            "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert error["param"] is not None and error["param"].startswith(param)
    assert not_json.status_code == 400


# Valid values at the very edge of their ranges; top_p and repetition_penalty 5e-324 (0 in float32) and
# temperature 5e-324 made NaN probabilities, answered 500 `internal error: RuntimeError` (found by the fuzzer).
EDGE_SAMPLING: list[dict[str, Any]] = [
    {"top_p": 5e-324},
    {"repetition_penalty": 5e-324},
    {"top_k": 1},
    {"top_p": 5e-324, "repetition_penalty": 5e-324, "top_k": 1},
    {"temperature": 5e-324},
    {"temperature": 5e-324, "repetition_penalty": 5e-324},
    {"temperature": 0, "repetition_penalty": 5e-324},
    {"temperature": 2, "top_p": 1, "repetition_penalty": 10, "presence_penalty": -2, "frequency_penalty": 2},
]


@pytest.mark.anyio
@pytest.mark.parametrize("sampling", EDGE_SAMPLING, ids=lambda fields: ",".join(f"{k}={v}" for k, v in fields.items()))
async def test_sampling_at_the_edges_answers(
    sampling: dict[str, Any], settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    body = {"messages": HELLO, "max_tokens": 4, "seed": 1, **sampling}
    async with serve(settings, make_backend()) as (client, _):
        response = await client.post("/v1/chat/completions", json=body)
        streamed = await client.post("/v1/chat/completions", json={**body, "stream": True})
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] >= 1
    assert streamed.status_code == 200
    assert stream_text(streamed.text)[0] == response.json()["choices"][0]["message"]["content"]


@pytest.mark.anyio
async def test_text_content_parts_are_joined(
    settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "how are you?"}]}
    ]
    async with serve(settings, make_backend()) as (client, _):
        joined = (
            await client.post("/v1/chat/completions", json={"messages": parts, "max_tokens": 4, "temperature": 0})
        ).json()
        plain = (
            await client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 4, "temperature": 0})
        ).json()
    assert joined["choices"] == plain["choices"]
    assert joined["usage"] == plain["usage"]


def _raw_request(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"t")],
        "client": ("127.0.0.1", 5000),
        "server": ("t", 80),
    }


class LeavingClient:
    """A raw ASGI client that sends `body`, then disconnects when `gone` is set; records what it got."""

    def __init__(self, body: dict[str, Any], *, stalls: bool = False) -> None:
        """`stalls`: sending the first body bytes waits until the client leaves (it stopped reading)."""
        self.body = json.dumps(body).encode()
        self.sent: list[dict[str, Any]] = []
        self.streaming = anyio.Event()  # the first body bytes arrived
        self.gone = anyio.Event()
        self._asked = False
        self._stalls = stalls

    async def receive(self) -> dict[str, Any]:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            self.streaming.set()
            if self._stalls:
                await self.gone.wait()  # flow control: the send waits until the connection is lost


@pytest.mark.anyio
async def test_busy_service_answers_503_and_a_gone_client_stops_generation(
    settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    backend = make_backend(concurrency=1, max_waiting=0)
    app = create_app(settings.model_copy(update={"system_prompt": ""}), backend)
    long_answer = {"messages": HELLO, "max_tokens": 480, "temperature": 0, "stream": True}
    leaving = LeavingClient(long_answer)

    async with (
        app.router.lifespan_context(app),
        anyio.create_task_group() as tasks,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        tasks.start_soon(app, _raw_request(long_answer), leaving.receive, leaving.send)
        await leaving.streaming.wait()
        # The one slot is taken by the long stream: the next request is refused at once.
        refused = await client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 2})
        leaving.gone.set()  # the streaming client disconnects
    assert leaving.sent[0]["status"] == 200
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "2"
    assert refused.json()["error"]["code"] == "queue_full"
    # The worker thread saw the disconnect and stopped long before its 480 tokens. When the client left
    # before the first token, the thread may still be in the model's first step here: it counts itself
    # (cancelled, or the tokens it made) once that step ends.
    with anyio.fail_after(60):
        while backend.stats.cancelled == 0 and backend.stats.completion_tokens == 0:
            await anyio.sleep(0.05)
    assert backend.stats.started == 1
    assert backend.stats.cancelled == 1
    assert backend.stats.completion_tokens < 480


@pytest.mark.anyio
async def test_a_client_gone_while_its_first_bytes_are_sent_stops_generation(
    settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    # The client stops reading at the first bytes, then disconnects: the response is cancelled while its
    # event iterator waits at a `yield`, the one place where nothing inside the iterator sees the
    # cancellation. The stream must still be closed, or the worker blocks forever handing its next
    # piece to a reader that is gone, holding the only slot.
    backend = make_backend(concurrency=1, max_waiting=0)
    app = create_app(settings.model_copy(update={"system_prompt": ""}), backend)
    long_answer = {"messages": HELLO, "max_tokens": 480, "temperature": 0, "stream": True}
    leaving = LeavingClient(long_answer, stalls=True)

    async with app.router.lifespan_context(app):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(app, _raw_request(long_answer), leaving.receive, leaving.send)
            await leaving.streaming.wait()
            leaving.gone.set()
        with anyio.fail_after(60):
            while backend.stats.cancelled == 0:
                await anyio.sleep(0.05)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            again = await client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 2})
    assert backend.stats.completion_tokens < 480
    assert again.status_code == 200, again.text


@pytest.mark.anyio
async def test_a_gone_client_stops_a_non_streaming_generation(
    settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    backend = make_backend(concurrency=1, max_waiting=0)
    app = create_app(settings.model_copy(update={"system_prompt": ""}), backend)
    long_answer = {"messages": HELLO, "max_tokens": 480, "temperature": 0}
    leaving = LeavingClient(long_answer)

    async with app.router.lifespan_context(app):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(app, _raw_request(long_answer), leaving.receive, leaving.send)
            with anyio.fail_after(60):
                while backend.stats.started == 0:
                    await anyio.sleep(0.01)
            await anyio.sleep(0.2)  # a few tokens in
            leaving.gone.set()  # the client disconnects while the answer is being generated
        # The slot is free again at once.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            again = await client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 2})
    # The worker thread stopped long before its 480 tokens.
    assert backend.stats.started == 2 and backend.stats.cancelled == 1
    assert backend.stats.completion_tokens < 480
    assert leaving.sent[0]["status"] == 499
    assert again.status_code == 200, again.text
