from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from comps.core.answer_events import AnswerDelta, Done, Transcript, encode_event
from ui.client import GatewayClient, GatewayError, Question


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
            yield "event: from_the_future\ndata: {}\n\n"  # unknown to this client: skipped
            yield encode_event(Done(transcript=body.get("text"), answer="Hi", segments=0, timings={"llm": 0.5}))
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/v1/avatars")
    async def avatars() -> Any:
        return {"avatars": [{"id": "astronaut", "name": "Astronaut", "kind": "image"}]}

    @app.get("/v1/videos/{vid}")
    async def video(vid: str) -> Any:
        return Response(b"mp4bytes", media_type="video/mp4")

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
