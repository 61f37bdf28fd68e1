"""The ASR endpoints: OPEA's `POST /v1/asr` and OpenAI's `POST /v1/audio/transcriptions`."""

from __future__ import annotations

import functools
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from comps.asr.backends.base import SAMPLE_RATE, AsrBackend, Transcript
from comps.asr.formats import render
from comps.asr.languages import normalize_language
from comps.asr.schemas import WHISPER_1, ResponseFormat
from comps.asr.settings import AsrSettings
from comps.core.app import require_ready
from comps.core.audio import decode_audio, decode_base64
from comps.core.contracts import AsrRequest, AsrResponse
from comps.core.errors import InvalidRequest
from comps.core.limits import InferenceQueue

router = APIRouter()


async def transcribe_bytes(
    request: Request,
    data: bytes,
    *,
    param: str,
    language: str | None,
    prompt: str | None = None,
    temperature: float | None = None,
) -> Transcript:
    """Validate the language, decode the audio off the event loop and transcribe it through the queue."""
    app = request.app
    require_ready(app)
    settings: AsrSettings = app.state.settings
    backend: AsrBackend = app.state.backend
    queue: InferenceQueue = app.state.queue
    # The request's language applies to this request only; the service's default is never changed.
    code = normalize_language(language, supported=backend.languages) or app.state.default_language
    decode = functools.partial(
        decode_audio, data, sample_rate=SAMPLE_RATE, max_seconds=settings.max_audio_seconds, param=param
    )
    audio = await anyio.to_thread.run_sync(decode)
    job = functools.partial(backend.transcribe, audio, language=code, prompt=prompt or None, temperature=temperature)
    return await queue.run(job)


def check_model(requested: str | None, backend: AsrBackend) -> None:
    """Accept no model, OpenAI's default `whisper-1`, or the loaded model's name; anything else is a 400."""
    if requested is None or requested.strip() in ("", WHISPER_1, backend.model_name):
        return
    raise InvalidRequest(
        f"model {requested!r} is not served here; this service serves {backend.model_name!r} "
        f"(also accepted as {WHISPER_1!r})",
        param="model",
        code="model_not_found",
    )


@router.post("/v1/asr", tags=["asr"])
async def asr(request: Request, body: AsrRequest) -> AsrResponse:
    """OPEA: base64 of any audio file in, the transcript out."""
    data = decode_base64(body.audio, param="audio")
    transcript = await transcribe_bytes(request, data, param="audio", language=body.language)
    return AsrResponse(asr_result=transcript.text)


@router.post("/v1/audio/transcriptions", tags=["asr"], response_class=Response)
async def transcriptions(
    request: Request,
    file: Annotated[UploadFile, File(description="the audio file (wav, mp3, flac, ogg, m4a, webm, ...)")],
    model: Annotated[str | None, Form(description="`whisper-1` or the served model's name")] = None,
    language: Annotated[str | None, Form(description="ISO-639-1 code; detected when absent")] = None,
    prompt: Annotated[str | None, Form(description="text that guides spelling and style")] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Annotated[float | None, Form(ge=0.0, le=1.0)] = None,
) -> Response:
    """OpenAI: multipart upload in, the transcript in the requested format out."""
    require_ready(request.app)
    check_model(model, request.app.state.backend)
    data = await file.read()
    transcript = await transcribe_bytes(
        request, data, param="file", language=language, prompt=prompt, temperature=temperature
    )
    return render(transcript, response_format)
