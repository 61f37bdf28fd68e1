"""One question followed through the gateway and all four real services by its request id."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.models import speak_wav

from comps.core.request_id import request_id_var
from gateway.app import create_app
from gateway.settings import GatewaySettings
from megaservice.avatarchatbot import STAGES, AvatarChatbot, stage_node

pytestmark = pytest.mark.slow


class Lines(logging.Handler):
    """Every record with the request id of the context that logged it (services log from their own threads)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((request_id_var.get(), record.getMessage()))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.anyio
async def test_one_question_is_in_every_services_log_under_its_id(real_services: dict[str, Any], lines: Lines) -> None:
    nodes = {s: stage_node(s, ("127.0.0.1", real_services[s].port), timeout_s=300, retries=0) for s in STAGES}
    bot = AvatarChatbot(nodes)
    app = create_app(GatewaySettings(max_tokens=8, log_level="INFO"), orchestrator=bot)
    audio = base64.b64encode(speak_wav("What is the capital of France?")).decode()
    async with app.router.lifespan_context(app):
        logging.getLogger().setLevel(logging.INFO)  # the gateway's start-up set its own level
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=None) as client:
            traced = await client.post("/v1/avatarchatbot", json={"audio": audio}, headers={"X-Request-ID": "trace-7"})
            fresh = await client.post("/v1/avatarchatbot", json={"text": "Hi!"})
            refused = await client.post("/v1/avatarchatbot", json={"text": "Hi!", "voice": "nobody"})
    await bot.aclose()
    assert traced.status_code == 200, traced.text
    assert traced.headers["x-request-id"] == "trace-7"
    mine = [message for rid, message in lines.lines if rid == "trace-7"]
    for path in ("/v1/avatarchatbot", "/v1/asr", "/v1/chat/completions", "/v1/tts", "/v1/animation"):
        assert any(f"POST {path} -> 200" in message for message in mine), (path, mine)
    # Without an id, the gateway makes one and every hop carries it.
    made = fresh.headers["x-request-id"]
    assert made != "trace-7" and len(made) == 16
    hops = [m for rid, m in lines.lines if rid == made]
    assert all(any(f"POST {p} -> 200" in m for m in hops) for p in ("/v1/chat/completions", "/v1/tts", "/v1/animation"))
    # The error envelope names the request, and the failing service logged under the same id.
    error = refused.json()["error"]
    assert refused.status_code >= 400 and error["request_id"] == refused.headers["x-request-id"]
    assert any("/v1/tts" in m for rid, m in lines.lines if rid == error["request_id"])
