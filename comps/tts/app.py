"""The TTS service app: OPEA's /v1/tts, OpenAI's /v1/audio/speech (whole, streamed or SSE) and /v1/voices."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response

from comps.core.app import create_service_app, require_ready
from comps.core.audio import CONTENT_TYPES, AudioFormat, encode_audio, resample
from comps.core.contracts import TtsRequest, TtsResponse
from comps.core.responses import ClosingStreamingResponse
from comps.core.settings import load_settings
from comps.core.sse import SSE_CONTENT, sse_event, sse_response
from comps.tts.backends import BACKENDS
from comps.tts.backends.base import TtsBackend
from comps.tts.schemas import SpeechRequest, VoicesResponse
from comps.tts.service import Speech, SpeechService
from comps.tts.settings import TtsSettings

logger = logging.getLogger(__name__)

VERSION = "0.1.0"
# OPEA's tts_result is a 16 kHz mono PCM16 WAV (what its animation service expects).
OPEA_SAMPLE_RATE = 16_000


# The audio bytes in the requested format's content type, or OpenAI's speech events with `stream_format=sse`.
_SPEECH_ANSWER: dict[str, Any] = {
    "description": "audio in `response_format`, or events with `stream_format: sse`",
    "content": {
        kind: {"schema": {"type": "string", "format": "binary"}} for kind in sorted(set(CONTENT_TYPES.values()))
    }
    | SSE_CONTENT,
}


def _encode(speech: Speech, rate: int, fmt: AudioFormat) -> bytes:
    return encode_audio(resample(speech.samples, speech.sample_rate, rate), rate, fmt)


def create_app(settings: TtsSettings | None = None, backend: TtsBackend | None = None) -> FastAPI:
    """Build the TTS app.

    Args:
        settings: the service settings; read from the environment when None.
        backend: a loaded backend (tests); when None, `BACKENDS[settings.backend]` loads one at start-up.
    """
    settings = settings or load_settings(TtsSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = backend
        if loaded is None:
            logger.info("loading the %s backend", settings.backend)
            loaded = await anyio.to_thread.run_sync(BACKENDS[settings.backend], settings)
        app.state.speech = SpeechService(backend=loaded, settings=settings)
        app.state.readiness.set_ready()
        yield

    app = create_service_app(
        name="tts",
        description="Text to speech (SpeechT5 or Piper), OPEA- and OpenAI-compatible",
        version=VERSION,
        settings=settings,
        lifespan=lifespan,
    )

    def service(request: Request) -> SpeechService:
        require_ready(request.app)
        speech: SpeechService = request.app.state.speech
        return speech

    @app.post("/v1/tts", tags=["tts"], response_model=TtsResponse)
    async def tts(body: TtsRequest, request: Request) -> TtsResponse:
        """OPEA: text in, base64 of a 16 kHz mono PCM16 WAV out."""
        speech_service = service(request)
        voice = speech_service.resolve_voice(body.voice)
        chunks = speech_service.chunks(body.text, param="text")
        speech = await speech_service.synthesize(chunks, voice=voice, speed=1.0)
        wav = await anyio.to_thread.run_sync(_encode, speech, OPEA_SAMPLE_RATE, "wav")
        return TtsResponse(tts_result=base64.b64encode(wav).decode("ascii"))

    @app.post("/v1/audio/speech", tags=["tts"], response_class=Response, responses={200: _SPEECH_ANSWER})
    async def audio_speech(body: SpeechRequest, request: Request) -> Response:
        """OpenAI: audio bytes in `response_format`; `pcm` streams chunk by chunk; `stream_format=sse` as events."""
        speech_service = service(request)
        voice = speech_service.resolve_voice(body.voice)
        chunks = speech_service.chunks(body.input, param="input")
        rate = settings.output_sample_rate
        fmt = body.response_format or settings.default_response_format
        if body.stream_format == "sse":
            return sse_response(
                _sse(speech_service.stream(chunks, voice=voice, speed=body.speed), rate, fmt), done=False
            )
        if fmt == "pcm":
            # Raw samples concatenate exactly, so each chunk goes out as soon as it exists. The first
            # chunk is made before answering, so a failure there still gets its own status.
            parts = speech_service.stream(chunks, voice=voice, speed=body.speed)
            first = await anext(parts)
            return ClosingStreamingResponse(
                _pcm(_chain(first, parts), rate),
                media_type=CONTENT_TYPES["pcm"],
                headers={"X-Sample-Rate": str(rate)},
            )
        speech = await speech_service.synthesize(chunks, voice=voice, speed=body.speed)
        audio = await anyio.to_thread.run_sync(_encode, speech, rate, fmt)
        return Response(content=audio, media_type=CONTENT_TYPES[fmt])

    @app.get("/v1/voices", tags=["tts"], response_model=VoicesResponse)
    async def voices(request: Request) -> VoicesResponse:
        """The voices a request may name."""
        speech_service = service(request)
        return VoicesResponse(
            backend=settings.backend if backend is None else type(backend).__name__,
            default=speech_service.default_voice,
            voices=speech_service.backend.voices,
            sample_rate=speech_service.sample_rate,
        )

    return app


async def _chain(first: Speech, rest: AsyncIterator[Speech]) -> AsyncIterator[Speech]:
    yield first
    async for speech in rest:
        yield speech


async def _pcm(parts: AsyncIterator[Speech], rate: int) -> AsyncIterator[bytes]:
    async for speech in parts:
        yield await anyio.to_thread.run_sync(_encode, speech, rate, "pcm")


async def _sse(parts: AsyncIterator[Speech], rate: int, fmt: AudioFormat) -> AsyncIterator[str]:
    """OpenAI's speech events: `speech.audio.delta` per chunk (base64 audio; a complete file each but for pcm)."""
    count = 0
    async for speech in parts:
        audio = await anyio.to_thread.run_sync(_encode, speech, rate, fmt)
        count += 1
        yield sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode("ascii")})
    yield sse_event({"type": "speech.audio.done", "chunks": count})
