from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from comps.core.answer_events import AnswerDelta, Done, Transcript, Video, encode_event
from ui.client import GatewayClient, GatewayError, Question

LIVE = "a" * 32
MISSING = "0" * 32
PNG = b"\x89PNG\r\n\x1a\nstill"


def _gateway(seen: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/avatarchatbot/stream")
    async def stream(request: Request) -> Any:
        body = await request.json()
        seen.append(body)
        if body.get("text") == "refuse":
            return JSONResponse({"error": {"message": "text is empty", "type": "invalid_request"}}, 400)

        async def events() -> AsyncIterator[str]:
            yield encode_event(Transcript(text=body.get("text")))
            yield encode_event(AnswerDelta(delta="Hi"))
            if body.get("text") == "break":
                error = {"error": {"message": "tts stage failed: voice x unknown", "type": "invalid_request"}}
                yield f"event: error\ndata: {json.dumps(error)}\n\n"
                return
            if body.get("text") == "garble":
                yield "event: answer\ndata: {not json\n\n"
                return
            yield encode_event(Video(id=LIVE, url=f"http://gw:8888/v1/videos/{LIVE}"))
            yield "event: from_the_future\ndata: {}\n\n"  # unknown to this client: skipped
            yield encode_event(Done(transcript=body.get("text"), answer="Hi", segments=0, timings={"llm": 0.5}))
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/v1/avatars")
    async def avatars() -> Any:
        return {"avatars": [{"id": "astronaut", "name": "Astronaut", "kind": "image"}]}

    @app.get("/v1/avatars/{avatar_id}/image")
    async def avatar_image(avatar_id: str) -> Any:
        if avatar_id != "astronaut":
            return JSONResponse({"error": {"message": f"no avatar {avatar_id}", "type": "not_found"}}, 404)
        return Response(PNG, media_type="image/png")

    @app.get("/v1/videos/{vid}")
    async def video(vid: str) -> Any:
        if vid == MISSING:
            return JSONResponse({"error": {"message": f"no video {vid}", "type": "not_found"}}, 404)

        async def pieces() -> AsyncIterator[bytes]:
            yield b"mp4"
            yield b"bytes"

        return StreamingResponse(pieces(), media_type="video/mp4")

    return app


def _client(app: FastAPI, base: str = "http://gw:8888") -> GatewayClient:
    return GatewayClient(base_url=base, timeout_s=10, transport=httpx.ASGITransport(app=app))


@pytest.mark.anyio
async def test_stream_events_and_payload(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    question = Question(text="hello", avatar="astronaut", fps=12, history=(("q1", "a1"),))
    async with _client(_gateway(seen), "http://gw:8888/v1/avatarchatbot") as client:
        events = [e async for e in client.ask(question)]
        assert events == [
            Transcript(text="hello"),
            AnswerDelta(delta="Hi"),
            Video(id=LIVE, url=f"http://gw:8888/v1/videos/{LIVE}"),
            Done(transcript="hello", answer="Hi", segments=0, timings={"llm": 0.5}),
        ]
        avatars = await client.avatars()
        assert avatars[0].id == "astronaut" and avatars[0].name == "Astronaut"
        saved = await client.download("/v1/videos/abc", tmp_path / "a.mp4")
        assert saved.read_bytes() == b"mp4bytes"
    assert seen[0] == {
        "text": "hello",
        "avatar": "astronaut",
        "fps": 12,
        "messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}],
    }


@pytest.mark.anyio
async def test_errors_carry_the_servers_message() -> None:
    async with _client(_gateway([])) as client:
        with pytest.raises(GatewayError) as refused:
            _ = [e async for e in client.ask(Question(text="refuse"))]
        assert refused.value.message == "text is empty" and refused.value.status == 400
        with pytest.raises(GatewayError, match="voice x unknown"):
            _ = [e async for e in client.ask(Question(text="break"))]
        with pytest.raises(GatewayError, match="unreadable event"):
            _ = [e async for e in client.ask(Question(text="garble"))]


@pytest.mark.anyio
async def test_unreachable_gateway_is_a_clear_error() -> None:
    async with GatewayClient(base_url="http://127.0.0.1:9", timeout_s=2) as client:
        with pytest.raises(GatewayError, match="cannot be reached"):
            await client.avatars()
        with pytest.raises(GatewayError, match="cannot be reached"):
            _ = [e async for e in client.ask(Question(text="x"))]


@pytest.mark.anyio
async def test_video_stream_and_avatar_image() -> None:
    async with _client(_gateway([])) as client:
        assert b"".join([chunk async for chunk in client.video_stream(LIVE)]) == b"mp4bytes"
        assert await client.avatar_image("astronaut") == PNG
        with pytest.raises(GatewayError) as missing:
            _ = [chunk async for chunk in client.video_stream(MISSING)]
        assert missing.value.message == f"no video {MISSING}"
        assert (missing.value.status, missing.value.kind) == (404, "not_found")
        with pytest.raises(GatewayError, match="no avatar nobody") as no_avatar:
            await client.avatar_image("nobody")
        assert no_avatar.value.status == 404


@pytest.mark.anyio
async def test_video_stream_from_an_unreachable_gateway() -> None:
    async with GatewayClient(base_url="http://127.0.0.1:9", timeout_s=2) as client:
        with pytest.raises(GatewayError, match="cannot be reached"):
            _ = [chunk async for chunk in client.video_stream(LIVE)]


@pytest.mark.anyio
async def test_a_video_stream_cut_short_says_so() -> None:
    def cut(request: httpx.Request) -> httpx.Response:
        async def pieces() -> AsyncIterator[bytes]:
            yield b"moof"
            raise httpx.ReadError("connection reset", request=request)

        return httpx.Response(200, content=pieces())

    client = GatewayClient(base_url="http://gw:8888", timeout_s=2, transport=httpx.MockTransport(cut))
    async with client:
        seen: list[bytes] = []
        with pytest.raises(GatewayError, match="broke off the video stream: connection reset"):
            async for chunk in client.video_stream(LIVE):
                seen.append(chunk)
        assert seen == [b"moof"]


@pytest.mark.anyio
async def test_every_call_carries_the_api_key_and_a_refused_key_is_the_uis_fault() -> None:
    from pydantic import SecretStr

    seen: list[str | None] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != "Bearer ui-k3y":
            return httpx.Response(401, json={"error": {"message": "the API key is wrong", "type": "authentication"}})
        return httpx.Response(200, json={"avatars": []}, headers={"content-type": "application/json"})

    transport = httpx.MockTransport(gateway)
    async with GatewayClient(base_url="http://gw", timeout_s=2, api_key=SecretStr("ui-k3y"), transport=transport) as ui:
        assert await ui.avatars() == []
        assert [chunk async for chunk in ui.video_stream(LIVE)] == [b'{"avatars":[]}']
    async with GatewayClient(base_url="http://gw", timeout_s=2, api_key=SecretStr("old"), transport=transport) as ui:
        with pytest.raises(GatewayError) as refused:
            await ui.avatars()
    assert seen == ["Bearer ui-k3y", "Bearer ui-k3y", "Bearer old"]
    # Shown to the person as the UI's own misconfiguration (a 502 from the UI), not as theirs.
    assert refused.value.kind == "upstream" and refused.value.status is None
    assert "AVATARCHAT_API_KEY" in refused.value.message
    async with GatewayClient(base_url="http://gw", timeout_s=2, transport=transport) as ui:
        with pytest.raises(GatewayError):
            await ui.avatars()
    assert seen[-1] is None  # no key set: none sent
