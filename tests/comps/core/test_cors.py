"""CORS from an allow-list (none by default) and the same rule for WebSocket handshakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, WebSocket

from comps.core.app import create_service_app
from comps.core.auth import bearer
from comps.core.cors import origin_allowed
from comps.core.settings import ServiceSettings

KEY = "k3y-0f-th1s-d3pl0yment"
PAGE = "https://chat.example.org"
OTHER = "https://evil.example.net"
pytestmark = pytest.mark.anyio


def _app(origins: str | None = None, key: str | None = None) -> FastAPI:
    values: dict[str, Any] = {"service_api_key": key} | ({"cors_origins": origins} if origins is not None else {})
    app = create_service_app(name="demo", description="d", version="1", settings=ServiceSettings(**values))

    @app.post("/v1/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    @app.websocket("/v1/animation/stream")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close()

    return app


@asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_by_default_no_origin_gets_cors_headers() -> None:
    async with _client(_app()) as client:
        preflight = await client.options("/v1/echo", headers=_preflight(PAGE))
        simple = await client.post("/v1/echo", json={"a": "b"}, headers={"Origin": PAGE})
    assert simple.status_code == 200  # the server answers; the browser keeps the answer from the page
    for response in (preflight, simple):
        assert not any(name.startswith("access-control-") for name in response.headers), response.headers


async def test_listed_origins_only() -> None:
    async with _client(_app(f"{PAGE}, http://localhost:7861")) as client:
        allowed = await client.options("/v1/echo", headers=_preflight(PAGE))
        simple = await client.post("/v1/echo", json={"a": "b"}, headers={"Origin": PAGE})
        other = await client.options("/v1/echo", headers=_preflight(OTHER))
        other_simple = await client.post("/v1/echo", json={"a": "b"}, headers={"Origin": OTHER})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == PAGE
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers  # the key is a header, not a cookie
    assert simple.headers["access-control-allow-origin"] == PAGE
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    error = other.json()["error"]  # in the envelope, naming what was refused and the setting
    assert (error["type"], error["code"]) == ("invalid_request", "cors_refused")
    assert "origin" in error["message"] and "AVATARCHAT_CORS_ORIGINS" in error["message"]
    assert "access-control-allow-origin" not in other_simple.headers


async def test_a_preflight_needs_no_key_and_a_401_stays_readable() -> None:
    async with _client(_app(PAGE, key=KEY)) as client:
        preflight = await client.options("/v1/echo", headers=_preflight(PAGE))
        refused = await client.post("/v1/echo", json={}, headers={"Origin": PAGE})
        passed = await client.post("/v1/echo", json={"a": "b"}, headers={"Origin": PAGE, **bearer(KEY)})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == PAGE
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == PAGE
    assert passed.status_code == 200 and passed.headers["access-control-allow-origin"] == PAGE


async def test_a_star_must_be_listed_alone_and_literally() -> None:
    async with _client(_app("*")) as client:
        simple = await client.post("/v1/echo", json={}, headers={"Origin": OTHER})
    assert simple.headers["access-control-allow-origin"] == "*"


async def _handshake(app: FastAPI, headers: dict[str, str]) -> dict[str, Any]:
    """The app's first answer to a WebSocket handshake (accept, or close before it opens)."""
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "path": "/v1/animation/stream",
        "raw_path": b"/v1/animation/stream", "query_string": b"", "subprotocols": [], "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "server": ("animation", 9066), "client": ("127.0.0.1", 5000),
    }  # fmt: skip
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    return sent[0]


async def test_a_websocket_from_an_unlisted_page_is_refused() -> None:
    app = _app(PAGE)
    assert (await _handshake(app, {"host": "animation:9066"}))["type"] == "websocket.accept"  # a program
    assert (await _handshake(app, {"host": "animation:9066", "origin": PAGE}))["type"] == "websocket.accept"
    same = await _handshake(app, {"host": "animation:9066", "origin": "http://animation:9066"})
    assert same["type"] == "websocket.accept"
    refused = await _handshake(app, {"host": "animation:9066", "origin": OTHER})
    assert (refused["type"], refused["code"]) == ("websocket.close", 1008)
    refused = await _handshake(_app(), {"host": "animation:9066", "origin": PAGE})  # nothing listed: same origin only
    assert refused["type"] == "websocket.close"


def test_origin_allowed() -> None:
    assert origin_allowed(None, "h:1", ())
    assert origin_allowed("http://h:1", "h:1", ())
    assert origin_allowed("HTTPS://Chat.Example.org", "h:1", (PAGE,))
    assert origin_allowed(OTHER, "h:1", ("*",))
    assert not origin_allowed(OTHER, "h:1", (PAGE,))
    assert not origin_allowed("null", None, ())
    assert not origin_allowed("null", "h:1", ())
