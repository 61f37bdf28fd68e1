"""`POST /v1/avatarchatbot` (OPEA's answer, or the detailed one) and its streaming variant."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from anyio.streams.memory import MemoryObjectSendStream
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from comps.core.answer_events import AnswerDelta, Done, Transcript, Video, encode_event
from comps.core.concurrency import UNBOUNDED, Producer
from comps.core.errors import InvalidRequest, PayloadTooLarge
from comps.core.sse import sse_response
from gateway.admission import Admission
from gateway.schemas import AvatarChatRequest, DetailedAnswer
from gateway.settings import GatewaySettings
from megaservice.avatarchatbot import AvatarChatbot, AvatarParameters
from megaservice.progress import Heard, Progress, Wrote
from megaservice.realtime import StreamedAnswer
from megaservice.records import RuntimeGraph

router = APIRouter(tags=["avatarchatbot"])


def check_question(settings: GatewaySettings, body: AvatarChatRequest) -> None:
    """Refuse a question over the configured limits before any stage spends time on it.

    Raises:
        InvalidRequest: typed text over GATEWAY_MAX_TEXT_CHARS. PayloadTooLarge: audio over GATEWAY_MAX_AUDIO_BYTES.
    """
    if body.text is not None and len(body.text) > settings.max_text_chars:
        raise InvalidRequest(
            f"text has {len(body.text)} characters, over the maximum of {settings.max_text_chars}",
            param="text",
            code="text_too_long",
        )
    size = len(body.audio or "") * 3 // 4  # the decoded size of the base64, within 2 bytes
    if size > settings.max_audio_bytes:
        raise PayloadTooLarge(
            f"audio is about {size} bytes, over the maximum of {settings.max_audio_bytes}",
            param="audio",
            code="audio_too_large",
        )


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
    check_question(request.app.state.settings, body)
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


def _wire(request: Request, progress: Progress) -> Transcript | AnswerDelta | Video:
    """The stream event telling the client about one fact of the answer."""
    if isinstance(progress, Heard):
        return Transcript(text=progress.transcript)
    if isinstance(progress, Wrote):
        return AnswerDelta(delta=progress.delta)
    return Video(id=progress.video_id, url=video_url(request, progress.video_id))


@router.post("/v1/avatarchatbot/stream", response_class=StreamingResponse)
async def avatarchatbot_stream(request: Request, body: AvatarChatRequest) -> StreamingResponse:
    """The answer as server-sent events (`comps.core.answer_events`) with one video that plays while it is made.

    Events: `video` (its URL streams the fragmented MP4 as it grows, sent before the first frame
    exists), `transcript`, `answer` deltas as the text is written, then `done` with the complete
    video's URL; a failure after the first event is a final `error` event.
    """
    started = time.perf_counter()
    check_question(request.app.state.settings, body)
    chatbot: AvatarChatbot = request.app.state.chatbot
    admission: Admission = request.app.state.admission
    params = _parameters(request, body)
    # A full line is an HTTP 503 with Retry-After while that is still possible; a request that loses a
    # race for the last place after this check gets the same error as an in-band `error` event.
    admission.check()
    answers: list[StreamedAnswer] = []

    async def answer(send: MemoryObjectSendStream[Progress]) -> None:
        if body.text is not None:
            send.send_nowait(Heard(body.text))  # typed: no ASR runs, so nothing else reports it
        answers.append(await chatbot.stream(audio=body.audio, text=body.text, params=params, observer=send.send_nowait))

    async def events() -> AsyncIterator[str]:
        transcript: str | None = None
        deltas: list[str] = []
        async with admission.slot(), Producer(answer, buffer=UNBOUNDED) as progress:
            async for fact in progress:
                event = _wire(request, fact)
                if isinstance(event, Transcript):
                    transcript = event.text
                elif isinstance(event, AnswerDelta):
                    deltas.append(event.delta)
                yield encode_event(event)
        result = answers[0]
        timings = _timings(result.runtime_graph, started)
        timings["animation"] = round(result.animation_s, 4)
        done = Done(
            transcript=transcript,
            answer="".join(deltas),
            video_url=video_url(request, result.video_id),
            duration_s=result.duration_s,
            timings=timings,
        )
        yield encode_event(done)

    return sse_response(events())
