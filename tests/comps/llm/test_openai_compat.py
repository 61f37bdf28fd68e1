"""The openai backend proxying to a second instance of our own service, and to upstreams that fail."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse

from comps.core.upstream import status_error
from comps.llm.app import create_app
from comps.llm.backends.base import GenerationRequest, Message
from comps.llm.backends.openai_compat import OpenAIBackend
from comps.llm.backends.transformers import TransformersBackend
from comps.llm.settings import LlmSettings

HELLO = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hello, how are you?"}]


def sse_datas(text: str) -> list[tuple[str | None, str]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        out.append((name, data))
    return out


def proxy_backend(upstream: Any, **kw: Any) -> OpenAIBackend:
    transport = upstream if isinstance(upstream, httpx.AsyncBaseTransport) else httpx.ASGITransport(app=upstream)
    return OpenAIBackend(
        client=httpx.AsyncClient(transport=transport),
        base_url="http://upstream/v1",
        upstream_model=kw.pop("upstream_model", "tiny-llm"),
        name="proxied",
        max_concurrency=kw.pop("max_concurrency", 4),
        max_queue=kw.pop("max_queue", 4),
    )


@asynccontextmanager
async def proxy(settings: LlmSettings, backend: OpenAIBackend) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, backend)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


@asynccontextmanager
async def our_upstream(
    llm_settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(llm_settings, make_backend())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://upstream") as direct,
    ):
        yield app, direct


@pytest.mark.anyio
async def test_proxy_answers_like_the_upstream_streaming_and_not(
    llm_settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    request = {"messages": HELLO, "max_tokens": 8, "temperature": 0}
    async with our_upstream(llm_settings, make_backend) as (upstream, direct):
        expected = (await direct.post("/v1/chat/completions", json=request)).json()
        async with proxy(llm_settings, proxy_backend(upstream)) as client:
            whole = await client.post("/v1/chat/completions", json=request)
            streamed = await client.post("/v1/chat/completions", json={**request, "stream": True})
            models = (await client.get("/v1/models")).json()
    assert whole.status_code == 200, whole.text
    body = whole.json()
    assert body["model"] == "proxied"
    assert body["choices"][0]["message"]["content"] == expected["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == expected["usage"]
    events = sse_datas(streamed.text)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == expected["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert models["data"][0]["id"] == "proxied"


@pytest.mark.anyio
async def test_upstream_4xx_keeps_its_status_and_message(
    llm_settings: LlmSettings, make_backend: Callable[..., TransformersBackend]
) -> None:
    too_long = {"messages": HELLO, "max_tokens": 600}
    async with (
        our_upstream(llm_settings, make_backend) as (upstream, _),
        proxy(llm_settings, proxy_backend(upstream)) as client,
    ):
        plain = await client.post("/v1/chat/completions", json=too_long)
        streamed = await client.post("/v1/chat/completions", json={**too_long, "stream": True})
    for response in (plain, streamed):
        assert response.status_code == 400
        message = response.json()["error"]["message"]
        assert message.startswith("llm upstream: this model's context is 512 tokens")
        assert message.endswith("(HTTP 400)")
        assert "600 more" in message


def failing_upstream() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> Any:
        kind = body["messages"][-1]["content"]
        if kind == "crash":
            return JSONResponse({"error": {"message": "CUDA out of memory"}}, status_code=500)
        if kind == "busy":
            return JSONResponse({"error": "model is loading"}, status_code=503, headers={"Retry-After": "7"})
        if kind == "auth":
            return JSONResponse({"detail": "bad key"}, status_code=401)
        if kind == "garbage":
            return JSONResponse({"unexpected": True})

        async def events() -> AsyncIterator[str]:
            chunk = {"choices": [{"index": 0, "delta": {"content": "Hi "}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
            yield 'event: error\ndata: {"error": {"message": "worker died"}}\n\n'

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def ask(content: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **extra}


@pytest.mark.anyio
async def test_upstream_5xx_auth_and_garbage_map_to_our_errors(llm_settings: LlmSettings) -> None:
    async with proxy(llm_settings, proxy_backend(failing_upstream())) as client:
        crash = await client.post("/v1/chat/completions", json=ask("crash"))
        crash_stream = await client.post("/v1/chat/completions", json=ask("crash", stream=True))
        busy = await client.post("/v1/chat/completions", json=ask("busy"))
        auth = await client.post("/v1/chat/completions", json=ask("auth"))
        garbage = await client.post("/v1/chat/completions", json=ask("garbage"))
    for response in (crash, crash_stream):
        assert response.status_code == 502
        assert response.json()["error"]["message"] == "llm upstream: CUDA out of memory (HTTP 500)"
        assert response.json()["error"]["type"] == "upstream"
    assert busy.status_code == 503 and busy.headers["retry-after"] == "7"
    assert busy.json()["error"]["message"] == "llm upstream: model is loading (HTTP 503)"
    assert auth.status_code == 502 and "LLM_API_KEY" in auth.json()["error"]["message"]
    assert garbage.status_code == 502 and "unreadable" in garbage.json()["error"]["message"]


@pytest.mark.anyio
async def test_upstream_failure_mid_stream_becomes_a_final_error_event(llm_settings: LlmSettings) -> None:
    async with proxy(llm_settings, proxy_backend(failing_upstream())) as client:
        response = await client.post("/v1/chat/completions", json=ask("stream", stream=True))
    assert response.status_code == 200
    events = sse_datas(response.text)
    assert json.loads(events[1][1])["choices"][0]["delta"]["content"] == "Hi "
    name, data = events[-1]
    assert name == "error"
    assert json.loads(data)["error"]["message"] == "llm upstream: worker died"


@pytest.mark.anyio
async def test_unreachable_upstream_is_503(llm_settings: LlmSettings) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with proxy(llm_settings, proxy_backend(httpx.MockTransport(refuse))) as client:
        plain = await client.post("/v1/chat/completions", json=ask("hi"))
        streamed = await client.post("/v1/chat/completions", json=ask("hi", stream=True))
    for response in (plain, streamed):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "upstream_unreachable"
        assert "http://upstream/v1/chat/completions" in response.json()["error"]["message"]


@pytest.mark.anyio
async def test_settings_open_a_real_client_to_llm_endpoint(tmp_path: Any) -> None:
    with socket.socket() as sock:  # a local port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = LlmSettings(backend="openai", endpoint=f"http://127.0.0.1:{port}", model_cache_dir=tmp_path)
    async with proxy(settings, None) as client:  # type: ignore[arg-type]
        assert (await client.get("/ready")).status_code == 200
        response = await client.post("/v1/chat/completions", json=ask("hi"))
    assert response.status_code == 503
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in response.json()["error"]["message"]


@pytest.mark.anyio
async def test_proxy_concurrency_limit_is_503(llm_settings: LlmSettings) -> None:
    import anyio

    release = anyio.Event()
    entered = anyio.Event()
    upstream = FastAPI()

    @upstream.post("/v1/chat/completions")
    async def slow(body: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        await release.wait()
        return {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}

    async with proxy(llm_settings, proxy_backend(upstream, max_concurrency=1, max_queue=0)) as client:
        results: list[httpx.Response] = []

        async def first() -> None:
            results.append(await client.post("/v1/chat/completions", json=ask("hi")))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first)
            await entered.wait()
            refused = await client.post("/v1/chat/completions", json=ask("hi"))
            release.set()
    assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
    assert results[0].status_code == 200
    assert results[0].json()["usage"] is None  # the upstream reported none; we do not invent counts


def test_request_body_passes_every_set_field_through() -> None:
    backend = proxy_backend(httpx.MockTransport(lambda r: httpx.Response(500)))
    request = GenerationRequest(
        messages=(Message(role="user", content="hi"),),
        max_tokens=5,
        temperature=0.0,
        top_p=0.9,
        top_k=40,
        stop=("\n",),
        seed=3,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        repetition_penalty=1.1,
    )
    body = backend.body(request, stream=True)
    assert body == {
        "model": "tiny-llm",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 5,
        "temperature": 0.0,
        "top_p": 0.9,
        "top_k": 40,
        "stop": ["\n"],
        "seed": 3,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "repetition_penalty": 1.1,
    }
    unset = backend.body(GenerationRequest(messages=(Message(role="user", content="hi"),)), stream=False)
    assert set(unset) == {"model", "messages", "stream"}


@pytest.mark.parametrize(
    ("status", "body", "expected_status", "message"),
    [
        (404, '{"error": {"message": "model x does not exist"}}', 404, "model x does not exist"),
        (422, '{"detail": "bad field"}', 422, "bad field"),
        (429, "slow down", 503, "slow down"),
        (502, "", 502, "Bad Gateway"),
    ],
)
def test_upstream_error_mapping(status: int, body: str, expected_status: int, message: str) -> None:
    error = status_error("llm upstream", httpx.Response(status), body)
    assert error.status == expected_status
    assert error.message == f"llm upstream: {message} (HTTP {status})"
