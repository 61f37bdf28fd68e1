from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from support.metrics import sample

from comps.core.app import create_service_app, require_ready
from comps.core.settings import ServiceSettings


class Echo(BaseModel):
    text: str


def _app(*, loaded: bool, max_body: int = 4096) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if loaded:
            app.state.readiness.set_ready()
        yield

    settings = ServiceSettings(max_body_bytes=max_body)
    app = create_service_app(name="demo", description="a demo", version="1.2.3", settings=settings, lifespan=lifespan)

    @app.post("/v1/echo")
    async def echo(body: Echo) -> Echo:
        require_ready(app)
        return body

    @app.get("/v1/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @app.get("/v1/crash")
    async def crash() -> None:
        raise RuntimeError("a bug")

    return app


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.anyio
async def test_ops_endpoints() -> None:
    app = _app(loaded=True)
    async with app.router.lifespan_context(app), await _client(app) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        assert (await client.get("/ready")).status_code == 200
        check = (await client.get("/v1/health_check")).json()
        assert check == {"Service Title": "demo", "Version": "1.2.3", "Service Description": "a demo"}
        before = (await client.get("/metrics")).text
        for _ in range(3):
            assert (await client.post("/v1/echo", json={"text": "hi"})).status_code == 200
        await client.get("/v1/items/abc")
        await client.get("/v1/items/def")
        stats = (await client.get("/v1/statistics")).json()
        assert stats["/v1/echo"]["count"] == 3
        assert stats["/v1/echo"]["p50_latency"] <= stats["/v1/echo"]["p99_latency"]
        assert stats["/v1/items/{item_id}"]["count"] == 2
        assert "/health" not in stats
        after = (await client.get("/metrics")).text
    echo = {"service": "demo", "method": "POST", "path": "/v1/echo"}
    items = {"service": "demo", "method": "GET", "path": "/v1/items/{item_id}"}  # the template: ids are not labels
    for name, labels, count in [
        ("avatarchat_requests_total", {**echo, "status": "200"}, 3),
        ("avatarchat_request_duration_seconds_count", echo, 3),
        ("avatarchat_requests_total", {**items, "status": "200"}, 2),
        ("avatarchat_request_duration_seconds_count", items, 2),
    ]:
        assert sample(after, name, **labels) - sample(before, name, **labels) == count, (name, labels)
    assert 'avatarchat_requests_total{method="POST",path="/v1/echo",service="demo",status="200"} 3.0' in after
    assert "/metrics" not in after and "/health" not in after  # ops endpoints are not counted


@pytest.mark.anyio
async def test_metrics_count_the_event_loops_tasks_and_a_left_task_shows() -> None:
    app = _app(loaded=True)
    async with app.router.lifespan_context(app), await _client(app) as client:
        idle = sample((await client.get("/metrics")).text, "avatarchat_event_loop_tasks", service="demo")
        left = asyncio.get_running_loop().create_task(asyncio.sleep(60))  # work nobody ended
        busy = sample((await client.get("/metrics")).text, "avatarchat_event_loop_tasks", service="demo")
        left.cancel()
    assert idle >= 1  # the scrape's own task at least
    assert busy == idle + 1


@pytest.mark.anyio
async def test_not_ready_is_503_in_the_envelope() -> None:
    app = _app(loaded=False)
    async with app.router.lifespan_context(app), await _client(app) as client:
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["error"]["type"] == "unavailable"
        assert (await client.get("/health")).status_code == 200
        echo = await client.post("/v1/echo", json={"text": "hi"})
        assert echo.status_code == 503 and "retry-after" in echo.headers


@pytest.mark.anyio
async def test_oversized_body_gets_413_in_the_envelope() -> None:
    app = _app(loaded=True, max_body=1024)
    async with app.router.lifespan_context(app), await _client(app) as client:
        big = await client.post("/v1/echo", json={"text": "x" * 5000})
        assert big.status_code == 413
        assert big.json()["error"]["type"] == "payload_too_large"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 400

        streamed = await client.post("/v1/echo", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413


@pytest.mark.anyio
async def test_request_id_round_trips() -> None:
    app = _app(loaded=True)
    async with app.router.lifespan_context(app), await _client(app) as client:
        response = await client.get("/health", headers={"X-Request-ID": "abc123"})
        assert response.headers["x-request-id"] == "abc123"
        assert len((await client.get("/health")).headers["x-request-id"]) == 16


@pytest.mark.anyio
async def test_every_error_envelope_carries_the_request_id() -> None:
    app = _app(loaded=True, max_body=1024)
    headers = {"X-Request-ID": "trace-1"}
    async with app.router.lifespan_context(app), await _client(app) as client:
        answers = [
            await client.post("/v1/echo", json={"wrong": 1}, headers=headers),  # 400 (validation)
            await client.get("/v1/nothing-here", headers=headers),  # 404 (router)
            await client.post("/v1/echo", content=b"x" * 2000, headers=headers),  # 413 (body limit)
            await client.get("/v1/crash", headers=headers),  # 500 (a bug)
        ]
    assert [a.status_code for a in answers] == [400, 404, 413, 500]
    for answer in answers:
        assert answer.json()["error"]["request_id"] == "trace-1"
        assert answer.headers["x-request-id"] == "trace-1"
    assert answers[-1].json()["error"]["message"] == "internal error: RuntimeError"


@pytest.mark.anyio
async def test_the_threads_setting_caps_torch_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch, "set_num_threads", lambda n: seen.append(n))
    seen: list[int] = []
    app = create_service_app(name="demo", description="d", version="1", settings=ServiceSettings(threads=1))
    async with app.router.lifespan_context(app):
        assert seen == [1]
    unset = create_service_app(name="demo", description="d", version="1", settings=ServiceSettings())
    async with unset.router.lifespan_context(unset):
        assert seen == [1]  # unset: torch keeps its own
