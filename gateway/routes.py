"""`POST /v1/avatarchatbot` (OPEA's answer, or the detailed one) and its streaming variant."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from comps.core.sse import sse_event, sse_response
from gateway.admission import Admission
from gateway.schemas import AvatarChatRequest, DetailedAnswer
from gateway.settings import GatewaySettings
from megaservice.avatarchatbot import AvatarChatbot, AvatarParameters
from megaservice.records import NodeEvent, RuntimeGraph

router = APIRouter(tags=["avatarchatbot"])


def _parameters(request: Request, body: AvatarChatRequest) -> AvatarParameters:
    settings: GatewaySettings = request.app.state.settings
    return body.parameters(
        max_tokens=settings.max_tokens,
        model=settings.llm_model,
        system_prompt=settings.system_prompt,
        min_chars=settings.sentence_min_chars,
    )


def video_url(request: Request, video_id: str) -> str:
    """A URL on this gateway serving the video (the public URL setting, else the address the caller used)."""
    settings: GatewaySettings = request.app.state.settings
    base = settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/v1/videos/{video_id}"


def _timings(graph: RuntimeGraph, started: float) -> dict[str, float]:
    timings = {name: round(seconds, 4) for name, seconds in graph.timings().items()}
    timings["total"] = round(time.perf_counter() - started, 4)
    return timings


@router.post("/v1/avatarchatbot", response_model=None)
async def avatarchatbot(request: Request, body: AvatarChatRequest) -> JSONResponse | DetailedAnswer:
    """Question in, talking video out.

    By default the answer is OPEA's: a JSON string holding the video path. With `"detailed": true` it is
    JSON with the transcript, the answer text, a `video_url` served by this gateway, and per-stage timings.
    """
    started = time.perf_counter()
    chatbot: AvatarChatbot = request.app.state.chatbot
    admission: Admission = request.app.state.admission
    async with admission.slot():
        answer = await chatbot.answer(audio=body.audio, text=body.text, params=_parameters(request, body))
    if not body.detailed:
        return JSONResponse(answer.video.video_path)
    return DetailedAnswer(
        id=answer.video.id,
        transcript=answer.transcript,
        answer=answer.text,
        video_url=video_url(request, answer.video.id),
        video_path=answer.video.video_path,
        duration_s=answer.video.duration_s,
        frames=answer.video.frames,
        fps=answer.video.fps,
        timings=_timings(answer.runtime_graph, started),
    )


class _Translator:
    """Orchestrator events -> the stream's SSE events: transcript, answer deltas, ordered segments."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.transcript: str | None = None
        self.tokens: list[str] = []
        self.sentences: dict[int, str] = {}
        self.segments = 0

    def __call__(self, event: NodeEvent) -> str | None:
        if event.kind == "finished" and event.node == "asr":
            self.transcript = event.value.asr_result
            return sse_event({"text": self.transcript}, event="transcript")
        if event.kind != "item" or event.index is None:
            return None
        if event.node == "llm":
            self.tokens.append(str(event.value))
            return sse_event({"delta": str(event.value)}, event="answer")
        if event.node == "tts":
            self.sentences[event.index] = event.request.text
            return None
        if event.node == "animation":
            self.segments += 1
            video = event.value
            segment: dict[str, Any] = {
                "index": event.index,
                "text": self.sentences.get(event.index, ""),
                "id": video.id,
                "video_url": video_url(self.request, video.id),
                "video_path": video.video_path,
                "duration_s": video.duration_s,
            }
            return sse_event(segment, event="segment")
        return None


@router.post("/v1/avatarchatbot/stream", response_class=StreamingResponse)
async def avatarchatbot_stream(request: Request, body: AvatarChatRequest) -> StreamingResponse:
    """The answer as server-sent events, video segment by segment.

    Events: `transcript`, `answer` deltas, `segment`s in order (each a short video with its own audio, to
    play back to back), then `done`; a failure after the first event is a final `error` event.
    """
    started = time.perf_counter()
    chatbot: AvatarChatbot = request.app.state.chatbot
    admission: Admission = request.app.state.admission
    params = _parameters(request, body)
    # A full line is an HTTP 503 with Retry-After while that is still possible; a request that loses a
    # race for the last place after this check gets the same error as an in-band `error` event.
    admission.check()

    async def events() -> AsyncIterator[str]:
        translate = _Translator(request)
        queue: asyncio.Queue[NodeEvent | None] = asyncio.Queue()
        async with admission.slot():
            if body.text is not None:
                translate.transcript = body.text
                yield sse_event({"text": body.text}, event="transcript")

            async def run() -> RuntimeGraph:
                try:
                    _, graph = await chatbot.stream(
                        audio=body.audio, text=body.text, params=params, observer=queue.put_nowait
                    )
                    return graph
                finally:
                    queue.put_nowait(None)

            task = asyncio.create_task(run())
            try:
                while (event := await queue.get()) is not None:
                    if (chunk := translate(event)) is not None:
                        yield chunk
                graph = await task
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        done = {
            "transcript": translate.transcript,
            "answer": "".join(translate.tokens),
            "segments": translate.segments,
            "timings": _timings(graph, started),
        }
        yield sse_event(done, event="done")

    return sse_response(events())
