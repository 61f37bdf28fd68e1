"""Four small in-process services speaking the stage contracts, recording what the gateway sent them."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from support.servers import Served

from comps.core.audio import encode_wav
from megaservice.avatarchatbot import STAGES, AvatarChatbot, stage_node
from megaservice.service import MicroService

ANSWER = "Paris is the capital of France. It lies on the Seine river."


@dataclass
class Stack:
    """The recorded requests per stage, and per-stage overrides (status, body) to make one fail."""

    videos: Path
    seen: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {s: [] for s in STAGES})
    fail: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    not_ready: set[str] = field(default_factory=set)  # stages whose /ready answers 503
    speech: list[bytes] = field(default_factory=list)  # the PCM16 each lip-sync stream received
    answer: str = ANSWER  # what the LLM says
    apps: dict[str, FastAPI] = field(default_factory=dict)

    def refuse(self, stage: str, body: dict[str, Any]) -> JSONResponse | None:
        self.seen[stage].append(body)
        if stage in self.fail:
            status, payload = self.fail[stage]
            return JSONResponse(payload, status_code=status)
        return None

    def nodes(self, **remote: tuple[str, int]) -> dict[str, MicroService]:
        return {s: stage_node(s, remote.get(s) or self.apps[s], timeout_s=10, retries=0) for s in STAGES}


SAMPLES_PER_CHAR = 160  # the fake TTS speaks 10 ms of a 0.25 tone per character


def spoken_wav(text: str) -> bytes:
    """A real WAV whose length says which text it speaks."""
    return encode_wav(np.full(len(text) * SAMPLES_PER_CHAR, 0.25, np.float32), 16_000)


def build_stack(videos: Path) -> Stack:
    stack = Stack(videos)
    asr, llm, tts, animation = FastAPI(), FastAPI(), FastAPI(), FastAPI()

    @asr.post("/v1/asr")
    async def transcribe(request: Request) -> Any:
        body = await request.json()
        return stack.refuse("asr", body) or {"asr_result": "What is the capital of France?"}

    @llm.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        if (refused := stack.refuse("llm", body)) is not None:
            return refused
        if not body.get("stream"):
            return {"id": "c1", "choices": [{"index": 0, "message": {"role": "assistant", "content": stack.answer}}]}

        async def chunks() -> AsyncIterator[str]:
            for word in stack.answer.split(" "):
                delta = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
                yield f"data: {json.dumps(delta)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    @tts.post("/v1/tts")
    async def speak(request: Request) -> Any:
        body = await request.json()
        return stack.refuse("tts", body) or {"tts_result": base64.b64encode(spoken_wav(body["text"])).decode()}

    @animation.post("/v1/animation")
    async def animate(request: Request) -> Any:
        body = await request.json()
        if (refused := stack.refuse("animation", body)) is not None:
            return refused
        video_id = f"v{len(stack.seen['animation'])}"
        (stack.videos / f"{video_id}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + base64.b64decode(body["byte_str"]))
        return {
            "id": video_id,
            "video_path": f"/outputs/{video_id}.mp4",
            "video_url": f"http://animation:9066/v1/videos/{video_id}",
            "duration_s": 1.5,
            "frames": 38,
            "fps": 25.0,
        }

    @animation.websocket("/v1/animation/stream")
    async def animate_stream(ws: WebSocket) -> None:
        await ws.accept()
        start = json.loads(await ws.receive_text())
        if (refused := stack.refuse("animation", start)) is not None:
            await ws.send_json({"type": "error", **json.loads(refused.body)})
            await ws.close(code=1008)
            return
        video_id = f"v{len(stack.seen['animation'])}"
        url = f"http://animation:9066/v1/videos/{video_id}"
        await ws.send_json({"type": "started", "id": video_id, "video_url": url, "content_type": "video/mp4"})
        pcm = bytearray()
        while (message := await ws.receive()).get("bytes") is not None or json.loads(message["text"])["type"] != "end":
            pcm += message.get("bytes") or b""
        stack.speech.append(bytes(pcm))
        (stack.videos / f"{video_id}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(pcm))
        seconds = len(pcm) / 2 / 16_000
        done = {"id": video_id, "video_url": url, "video_path": f"/outputs/{video_id}.mp4", "fps": 25.0}
        await ws.send_json({"type": "done", **done, "frames": round(seconds * 25), "duration_s": seconds})
        await ws.close()

    @animation.get("/v1/videos/{video_id}")
    async def video(video_id: str) -> Any:
        path = stack.videos / f"{video_id}.mp4"
        if not path.is_file():
            return JSONResponse({"error": {"message": f"video {video_id} not found", "type": "not_found"}}, 404)
        return FileResponse(path, media_type="video/mp4")

    @animation.get("/v1/avatars")
    async def list_avatars() -> Any:
        return {"avatars": [{"id": "default"}]}

    @animation.post("/v1/avatars")
    async def add_avatar(request: Request) -> Any:
        body = await request.body()
        return JSONResponse({"id": "new", "bytes": len(body), "type": request.headers["content-type"]}, 201)

    stack.apps = {"asr": asr, "llm": llm, "tts": tts, "animation": animation}
    for stage, app in stack.apps.items():
        app.add_api_route("/ready", _readiness(stack, stage), methods=["GET"])
    return stack


def _readiness(stack: Stack, stage: str) -> Callable[[], Awaitable[JSONResponse]]:
    async def ready() -> JSONResponse:
        return JSONResponse({}, status_code=503 if stage in stack.not_ready else 200)

    return ready


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return build_stack(tmp_path)


@pytest.fixture
def chatbot_for() -> Callable[..., AvatarChatbot]:
    def make(stack: Stack, **remote: tuple[str, int]) -> AvatarChatbot:
        return AvatarChatbot(stack.nodes(**remote))

    return make


@pytest.fixture
def served() -> Callable[[Any], Served]:
    return Served
