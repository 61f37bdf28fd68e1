"""The gateway with AVATARCHAT_API_KEY: callers need the key, and the gateway sends it to every service it calls."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from fastapi import Response
from pydantic import SecretStr
from support.servers import Served

from comps.core.auth import ApiKeyAuth, bearer
from comps.core.errors import UpstreamError
from gateway.app import create_app, remote_chatbot
from gateway.live.sessions import LiveSessions
from gateway.settings import GatewaySettings
from megaservice.avatarchatbot import STAGES, AvatarChatbot

KEY = "gateway-and-services-k3y"
pytestmark = pytest.mark.anyio


def guard(stack: Any) -> None:
    """Put the real key check in front of every fake service, as `create_service_app` does for ours."""
    for app in stack.apps.values():
        app.add_middleware(ApiKeyAuth, key=SecretStr(KEY))


def chatbot(stack: Any, key: str | None, **remote: tuple[str, int]) -> AvatarChatbot:
    """The stages, each node sending `key` (None: none)."""
    secret = SecretStr(key) if key is not None else None
    return AvatarChatbot({s: dataclasses.replace(n, api_key=secret) for s, n in stack.nodes(**remote).items()})


@asynccontextmanager
async def gateway(bot: AvatarChatbot, key: str | None = KEY) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(GatewaySettings(service_api_key=key, live_max_sessions=0), orchestrator=bot)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client
    await bot.aclose()


def _events(text: str) -> list[tuple[str, Any]]:
    blocks = [dict(line.split(": ", 1) for line in block.splitlines()) for block in text.strip().split("\n\n")]
    return [(block.get("event", "message"), json.loads(block["data"])) for block in blocks if block["data"] != "[DONE]"]


ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/avatarchatbot", {"json": {"text": "Where is Paris?"}}),
    ("POST", "/v1/avatarchatbot/stream", {"json": {"text": "Where is Paris?"}}),
    ("GET", "/v1/avatars", {}),
    ("POST", "/v1/avatars", {"files": {"file": ("a.png", b"png")}}),
    ("GET", "/v1/avatars/default", {}),
    ("DELETE", "/v1/avatars/anna", {}),
    ("GET", "/v1/avatars/default/image", {}),
    ("POST", "/v1/realtime", {"content": b"v=0\r\n", "headers": {"Content-Type": "application/sdp"}}),
    ("DELETE", "/v1/realtime/" + "0" * 32, {}),
    ("GET", "/v1/statistics", {}),
]


async def test_callers_without_the_key_reach_nothing(stack: Any) -> None:
    guard(stack)
    async with gateway(chatbot(stack, KEY)) as client:
        for method, path, kwargs in ROUTES:
            for key in ({}, bearer("wrong")):
                headers = {**kwargs.get("headers", {}), **key}
                response = await client.request(method, path, **{**kwargs, "headers": headers})
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["error"]["type"] == "authentication"
        for probe in ("/health", "/ready", "/v1/health_check", "/metrics"):  # the services' /ready open too
            assert (await client.get(probe)).status_code == 200, probe
    assert stack.seen == {stage: [] for stage in STAGES}  # nothing went past the gateway


async def test_a_keyed_gateway_reaches_keyed_services(stack: Any) -> None:
    guard(stack)
    async with gateway(chatbot(stack, KEY)) as client:
        whole = await client.post("/v1/avatarchatbot", json={"text": "Where is Paris?", "detailed": True},
                                  headers=bearer(KEY))  # fmt: skip
        assert whole.status_code == 200, whole.text
        video = await client.get(whole.json()["video_url"])  # no key: the 32-hex id of a real video is the capability
        assert video.status_code == 200 and video.content.startswith(b"\x00\x00\x00\x18ftyp")
        streamed = await client.post("/v1/avatarchatbot/stream", json={"text": "Where is Paris?"}, headers=bearer(KEY))
        assert [kind for kind, _ in _events(streamed.text)][-1] == "done", streamed.text  # the lip-sync socket too
        avatars = await client.get("/v1/avatars", headers=bearer(KEY))
        assert avatars.json() == {"avatars": [{"id": "default"}]}
        added = await client.post("/v1/avatars", files={"file": ("a.png", b"png")}, headers=bearer(KEY))
        assert added.status_code == 201
    assert [len(stack.seen[stage]) for stage in ("llm", "tts", "animation")] == [2, 3, 2]


async def test_a_wrong_key_toward_the_services_is_a_502_naming_the_stage(stack: Any) -> None:
    guard(stack)
    async with gateway(chatbot(stack, "not-the-services-key")) as client:
        whole = await client.post("/v1/avatarchatbot", json={"text": "Where is Paris?"}, headers=bearer(KEY))
        streamed = await client.post("/v1/avatarchatbot/stream", json={"text": "Where is Paris?"}, headers=bearer(KEY))
        avatars = await client.get("/v1/avatars", headers=bearer(KEY))
    error = whole.json()["error"]
    assert whole.status_code == 502 and error["code"] == "upstream_auth" and error["message"].startswith("llm:")
    kind, data = _events(streamed.text)[-1]
    assert kind == "error" and data["error"]["code"] == "upstream_auth"
    assert data["error"]["message"].startswith("animation:")
    assert avatars.status_code == 502 and "AVATARCHAT_API_KEY" in avatars.json()["error"]["message"]
    assert stack.seen == {stage: [] for stage in STAGES}


async def test_the_key_goes_over_sockets_too(stack: Any) -> None:
    """The remote hops: HTTP through the aiohttp transport, the lip-sync WebSocket through aiohttp."""
    guard(stack)
    with Served(stack.apps["animation"]) as animation, Served(stack.apps["tts"]) as tts:
        remote = {"animation": ("127.0.0.1", animation.port), "tts": ("127.0.0.1", tts.port)}
        async with gateway(chatbot(stack, KEY, **remote)) as client:
            streamed = await client.post("/v1/avatarchatbot/stream", json={"text": "Hi?"}, headers=bearer(KEY))
            assert [kind for kind, _ in _events(streamed.text)][-1] == "done", streamed.text
            assert (await client.get("/v1/avatars", headers=bearer(KEY))).status_code == 200
            assert (await client.get("/ready")).status_code == 200
        async with gateway(chatbot(stack, None, **remote)) as client:
            streamed = await client.post("/v1/avatarchatbot/stream", json={"text": "Hi?"}, headers=bearer(KEY))
            kind, data = _events(streamed.text)[-1]
            assert kind == "error" and data["error"]["code"] == "upstream_auth", data
            assert "HTTP 401" in data["error"]["message"]


async def test_the_live_idle_picture_is_fetched_with_the_key(stack: Any) -> None:
    ok, png = cv2.imencode(".png", np.full((48, 64, 3), 200, np.uint8))
    animation = stack.apps["animation"]

    @animation.get("/v1/avatars/{avatar_id}/image")
    async def image(avatar_id: str) -> Response:
        return Response(png.tobytes(), media_type="image/png")

    @animation.get("/v1/avatars/{avatar_id}")
    async def info(avatar_id: str) -> dict[str, Any]:
        return {"id": avatar_id, "width": 64, "height": 48}

    guard(stack)
    settings = GatewaySettings(service_api_key=KEY)
    for key in (KEY, "wrong"):
        bot = chatbot(stack, key)
        live = LiveSessions(settings=settings, chatbot=bot, vad=None, group=Any)  # type: ignore[arg-type]
        try:
            if key == KEY:
                picture, size = await live._idle_picture("default")
                assert size == (64, 48) and picture.shape == (72, 64)  # I420: 1.5 rows of bytes per pixel row
            else:
                with pytest.raises(UpstreamError) as refused:
                    await live._idle_picture("default")
                assert refused.value.code == "upstream_auth"
        finally:
            await bot.aclose()


def test_each_stage_gets_the_key_and_the_llm_its_own_where_set() -> None:
    keyed = remote_chatbot(GatewaySettings(service_api_key=KEY))
    assert {stage: node.headers for stage, node in keyed.nodes.items()} == dict.fromkeys(STAGES, bearer(KEY))
    own = remote_chatbot(GatewaySettings(service_api_key=KEY, llm_api_key="sk-upstream"))
    assert own.nodes["llm"].headers == bearer("sk-upstream") and own.nodes["tts"].headers == bearer(KEY)
    assert all(node.headers == {} for node in remote_chatbot(GatewaySettings()).nodes.values())
    assert KEY not in repr(GatewaySettings(service_api_key=KEY, llm_api_key="sk-upstream"))
