"""The optional bearer key on a service built by `create_service_app`: HTTP, probes, video reads, WebSockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from pydantic import SecretStr
from support.servers import Served

from comps.core.app import create_service_app
from comps.core.auth import bearer, check_authorization, is_open
from comps.core.errors import UpstreamError
from comps.core.settings import ServiceSettings
from megaservice.lipsync import open_lipsync
from megaservice.service import MicroService

KEY = "k3y-0f-th1s-d3pl0yment"
pytestmark = pytest.mark.anyio


def _app(key: str | None) -> FastAPI:
    settings = ServiceSettings(service_api_key=key, max_body_bytes=4096)
    app = create_service_app(name="demo", description="a demo", version="1", settings=settings)

    @app.post("/v1/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    @app.get("/v1/videos/{video_id}")
    @app.head("/v1/videos/{video_id}")
    async def video(video_id: str) -> dict[str, str]:
        return {"id": video_id}

    @app.post("/v1/videos/{video_id}")
    async def not_a_read(video_id: str) -> dict[str, str]:
        return {"id": video_id}

    @app.websocket("/v1/animation/stream")
    async def stream(ws: WebSocket) -> None:  # the lip-sync protocol's first step
        await ws.accept()
        await ws.receive_text()
        await ws.send_json({"type": "started", "id": "v1", "video_url": "http://t/v1/videos/v1"})
        await ws.receive()

    return app


@asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


def _refused(response: httpx.Response, code: str, *, http: bool = True) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("authentication", code)
    if http:  # findable in the logs like any error (a WebSocket handshake has no request id)
        assert error["request_id"] == response.headers["x-request-id"]
    assert KEY not in response.text


async def test_without_a_key_every_route_is_open() -> None:
    async with _client(_app(None)) as client:
        assert (await client.post("/v1/echo", json={"a": "b"})).json() == {"a": "b"}
        assert (await client.get("/v1/statistics")).status_code == 200
        assert (await client.post("/v1/echo", json={"a": "b"}, headers=bearer("anything"))).status_code == 200


async def test_a_key_refuses_requests_without_it_or_with_another() -> None:
    async with _client(_app(KEY)) as client:
        _refused(await client.post("/v1/echo", json={"a": "b"}), "missing_api_key")
        _refused(await client.get("/v1/statistics"), "missing_api_key")
        for header in (
            "Bearer wrong",
            f"Bearer {KEY}x",
            f"Bearer {KEY[:-1]}",
            f"Basic {KEY}",
            KEY,
            "Bearer",
            "Bearer ",
        ):
            _refused(await client.post("/v1/echo", json={}, headers={"Authorization": header}), "invalid_api_key")
        _refused(await client.get(f"/v1/statistics?api_key={KEY}"), "missing_api_key")  # a header, never the URL
        assert (await client.post("/v1/echo", json={"a": "b"}, headers=bearer(KEY))).json() == {"a": "b"}
        assert (await client.post("/v1/echo", json={}, headers={"Authorization": f"bearer {KEY}"})).status_code == 200
        assert (await client.get("/v1/statistics", headers=bearer(KEY))).status_code == 200


async def test_a_refused_request_is_answered_before_its_body_is_read() -> None:
    async with _client(_app(KEY)) as client:
        _refused(await client.post("/v1/echo", content=b"x" * 10_000), "missing_api_key")  # not the 413
        assert (await client.post("/v1/echo", content=b"x" * 10_000, headers=bearer(KEY))).status_code == 413


async def test_probes_docs_and_video_reads_stay_open() -> None:
    async with _client(_app(KEY)) as client:
        for path in ("/health", "/ready", "/v1/health_check", "/metrics", "/openapi.json", "/docs"):
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/v1/videos/" + "a" * 32)).json() == {"id": "a" * 32}
        assert (await client.head("/v1/videos/" + "a" * 32)).status_code == 200
        _refused(await client.post("/v1/videos/" + "a" * 32), "missing_api_key")  # only reads are open
        # Nothing but one path segment after /v1/videos/ is a video read: no way round the key by a path trick.
        for path in ("/v1/videos/a/../../v1/echo", "/v1/videos/a%2F..%2F..%2Fv1%2Fecho", "/v1/videos/", "/v1/echo/"):
            _refused(await client.get(path), "missing_api_key")


def test_open_paths_are_exactly_the_probes_docs_and_video_reads() -> None:
    assert is_open("GET", "/health") and is_open("POST", "/ready") and is_open("GET", "/metrics")
    assert is_open("GET", "/v1/videos/0123") and is_open("HEAD", "/v1/videos/0123")
    assert not is_open("DELETE", "/v1/videos/0123") and not is_open("GET", "/v1/videos/a/b")
    assert not is_open("GET", "/v1/statistics") and not is_open("GET", "/v1/avatars")
    assert not is_open("GET", "/health/x") and not is_open("GET", "/v1/animation/stream")


def test_the_header_check() -> None:
    key = KEY.encode()
    assert check_authorization(f"Bearer {KEY}".encode(), key) is None
    assert check_authorization(f"BEARER  {KEY} ".encode(), key) is None
    missing = check_authorization(None, key)
    assert missing is not None and (missing.status, missing.code) == (401, "missing_api_key")
    wrong = check_authorization(b"Bearer nope", key)
    assert wrong is not None and wrong.code == "invalid_api_key"


def test_the_key_never_shows_in_a_repr() -> None:
    settings = ServiceSettings(service_api_key=KEY)
    node = MicroService(name="asr", api_key=SecretStr(KEY))
    assert KEY not in repr(settings) and KEY not in str(settings) and KEY not in repr(node)
    assert node.headers == {"Authorization": f"Bearer {KEY}"}
    assert MicroService(name="asr").headers == {}


async def test_the_websocket_needs_the_key_in_process() -> None:
    app = _app(KEY)
    for headers, code in ((None, "upstream_auth"), (bearer("wrong"), "upstream_auth")):
        with pytest.raises(UpstreamError) as refused:
            await open_lipsync(base_url="http://demo.in-process", app=app, options={}, connect_timeout_s=5,
                               headers=headers)  # fmt: skip
        assert refused.value.code == code and "API key" in refused.value.message
    stream = await open_lipsync(
        base_url="http://demo.in-process", app=app, options={}, connect_timeout_s=5, headers=bearer(KEY)
    )
    assert stream.id == "v1"
    await stream.aclose()


async def test_the_websocket_needs_the_key_over_a_socket() -> None:
    with Served(_app(KEY)) as served:
        for headers in (None, bearer("wrong")):
            with pytest.raises(UpstreamError) as refused:
                await open_lipsync(base_url=served.url, app=None, options={}, connect_timeout_s=5, headers=headers)
            assert refused.value.code == "upstream_auth" and "HTTP 401" in refused.value.message
        stream = await open_lipsync(base_url=served.url, app=None, options={}, connect_timeout_s=5, headers=bearer(KEY))
        assert stream.id == "v1"
        await stream.aclose()
        # The handshake's refusal is a plain 401 in the envelope (uvicorn sends our answer to the upgrade).
        upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
        async with httpx.AsyncClient(base_url=served.url, trust_env=False) as client:
            refusal = await client.get("/v1/animation/stream", headers=upgrade)
        _refused(refusal, "missing_api_key", http=False)


async def test_a_page_for_browsers_asks_no_key() -> None:
    settings = ServiceSettings(service_api_key=KEY)
    app = create_service_app(name="ui", description="a page", version="1", settings=settings, serves_page=True)

    @app.get("/page")
    async def page() -> dict[str, str]:
        return {"page": "yes"}

    async with _client(app) as client:
        assert (await client.get("/page")).json() == {"page": "yes"}
