"""The TTS service over HTTP: OPEA's and OpenAI's payloads, the official client, formats, streaming, errors."""

from __future__ import annotations

import base64
import io
import json
import threading
import wave

import anyio
import httpx
import numpy as np
import pytest
from faster_whisper import WhisperModel
from openai import AsyncOpenAI
from support.models import whisper_tiny_dir, word_error_rate

from comps.core.audio import decode_audio
from comps.tts.app import create_app
from comps.tts.backends.base import Samples
from comps.tts.backends.piper import PiperBackend
from comps.tts.settings import TtsSettings

pytestmark = pytest.mark.anyio


def _settings(**overrides: object) -> TtsSettings:
    return TtsSettings(**overrides)  # type: ignore[arg-type]


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=120)


def _wav(data: bytes) -> tuple[int, int, int, int]:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()


async def test_opea_tts_payload_gives_16khz_mono_pcm16_wav(piper_backend: PiperBackend) -> None:
    app = create_app(_settings(), backend=piper_backend)
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.post("/v1/tts", json={"text": "Who are you?"})
    assert response.status_code == 200, response.text
    wav = base64.b64decode(response.json()["tts_result"])
    assert wav[:4] == b"RIFF"
    rate, channels, width, frames = _wav(wav)
    assert (rate, channels, width) == (16_000, 1, 2)
    assert 0.5 < frames / rate < 3.0


async def test_opea_speech_payload_without_a_format_gives_riff(piper_backend: PiperBackend) -> None:
    app = create_app(_settings(), backend=piper_backend)
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.post("/v1/audio/speech", json={"input": "Hello, who are you?"})
    assert response.status_code == 200, response.text
    assert response.content[:4] == b"RIFF"
    assert response.headers["content-type"] == "audio/wav"
    assert _wav(response.content)[0] == 24_000


@pytest.mark.parametrize(
    ("fmt", "content_type", "magic"),
    [
        ("mp3", "audio/mpeg", (b"ID3", b"\xff\xfb", b"\xff\xf3")),
        ("flac", "audio/flac", (b"fLaC",)),
        ("opus", "audio/ogg", (b"OggS",)),
        ("wav", "audio/wav", (b"RIFF",)),
    ],
)
async def test_every_format_decodes_back_to_the_same_speech(
    piper_backend: PiperBackend, fmt: str, content_type: str, magic: tuple[bytes, ...]
) -> None:
    app = create_app(_settings(), backend=piper_backend)
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.post(
            "/v1/audio/speech", json={"input": "Testing one two three.", "response_format": fmt, "voice": "alloy"}
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.content.startswith(magic)
    audio = decode_audio(response.content, sample_rate=16_000)
    assert 1.0 < audio.size / 16_000 < 4.0 and np.abs(audio).max() > 0.2


async def test_official_openai_client_works_unchanged(piper_backend: PiperBackend) -> None:
    app = create_app(_settings(), backend=piper_backend)
    async with app.router.lifespan_context(app), _client(app) as http:
        client = AsyncOpenAI(api_key="unused", base_url="http://t/v1", http_client=http)
        speech = await client.audio.speech.create(
            model="tts-1", voice="alloy", input="The client works.", response_format="mp3", speed=1.25
        )
        assert speech.response.headers["content-type"] == "audio/mpeg"
        assert decode_audio(speech.content, sample_rate=16_000).size > 8_000
        async with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="echo", input="First sentence here. Second sentence there.", response_format="pcm"
        ) as streamed:
            pcm = b"".join([chunk async for chunk in streamed.iter_bytes()])
    samples = np.frombuffer(pcm, dtype="<i2")
    # Two sentences and the pause between them, as 24 kHz s16le (OpenAI's pcm).
    assert 2.0 < samples.size / 24_000 < 6.0


async def test_sse_stream_sends_one_delta_per_chunk_then_done(piper_backend: PiperBackend) -> None:
    app = create_app(_settings(), backend=piper_backend)
    text = "One sentence. Another sentence! And a third one, without a final mark"
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.post(
            "/v1/audio/speech", json={"input": text, "stream_format": "sse", "response_format": "wav"}
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["speech.audio.delta"] * 3 + ["speech.audio.done"]
    durations = [_wav(base64.b64decode(e["audio"]))[3] / 24_000 for e in events[:3]]
    # The last chunk has no final punctuation and is still spoken (OPEA's splitter drops it).
    assert all(d > 0.5 for d in durations)


async def test_a_long_paragraph_is_chunked_and_transcribed_back(piper_backend: PiperBackend) -> None:
    """Piper speaks through the service; faster-whisper tiny.en hears the same words (two real models)."""
    text = (
        "The weather is lovely today. We walked to the park near the river. "
        "Afterwards we drank hot coffee and talked about books."
    )
    # Chunks of at most 40 characters: the paragraph goes to the model in pieces and comes back whole.
    app = create_app(_settings(chunk_chars=40), backend=piper_backend)
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.post("/v1/tts", json={"text": text})
    assert response.status_code == 200, response.text
    audio = decode_audio(base64.b64decode(response.json()["tts_result"]), sample_rate=16_000)
    model = WhisperModel(str(whisper_tiny_dir()), device="cpu", compute_type="int8", cpu_threads=1)
    segments, _ = model.transcribe(audio, language="en", beam_size=1)
    transcript = " ".join(segment.text for segment in segments)
    assert word_error_rate(text, transcript) <= 0.25, transcript


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "fragment"),
    [
        ("/v1/tts", {"text": ""}, 400, "empty_input", "text is empty"),
        ("/v1/tts", {"text": "   \n\t "}, 400, "empty_input", "text is empty"),
        ("/v1/tts", {"text": "x" * 101}, 400, "text_too_long", "101 characters, over the maximum of 100"),
        ("/v1/tts", {"text": "Hi", "voice": "nobody"}, 400, "unknown_voice", "available voices: default, en_US-joe"),
        ("/v1/tts", {}, 400, "validation_error", "text"),
        ("/v1/audio/speech", {"input": "Hi", "response_format": "aac"}, 400, "validation_error", "response_format"),
        ("/v1/audio/speech", {"input": "Hi", "speed": 10}, 400, "validation_error", "speed"),
        ("/v1/audio/speech", {"input": "Hi", "voice": "nobody"}, 400, "unknown_voice", "'nobody'"),
        ("/v1/audio/speech", {"input": "?!", "response_format": "pcm"}, 422, "no_speech", "nothing the voice"),
        ("/v1/audio/speech", {"input": "?!"}, 422, "no_speech", "nothing the voice"),
    ],
)
async def test_bad_input_gets_a_4xx_in_the_envelope(
    piper_backend: PiperBackend, path: str, body: dict[str, object], status: int, code: str, fragment: str
) -> None:
    app = create_app(_settings(max_text_chars=100), backend=piper_backend)
    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert fragment in error["message"]


async def test_voices_endpoint_lists_the_voices(piper_backend: PiperBackend) -> None:
    app = create_app(_settings(voice="en_US-joe-medium"), backend=piper_backend)
    async with app.router.lifespan_context(app), _client(app) as client:
        body = (await client.get("/v1/voices")).json()
    assert body["voices"] == ["default", "en_US-joe-medium"]
    assert body["default"] == "en_US-joe-medium"
    assert body["sample_rate"] == 22_050


class _GatedBackend:
    """The real Piper backend behind a gate, to hold one request inside the model call."""

    def __init__(self, inner: PiperBackend) -> None:
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self.max_chunk_chars = inner.max_chunk_chars
        self.entered = threading.Event()
        self.release = threading.Event()

    @property
    def voices(self) -> list[str]:
        return self.inner.voices

    def synthesize(self, chunks: list[str], *, voice: str, speed: float) -> list[Samples]:
        self.entered.set()
        assert self.release.wait(timeout=60)
        return self.inner.synthesize(chunks, voice=voice, speed=speed)


async def test_a_full_queue_answers_503_with_retry_after(piper_backend: PiperBackend) -> None:
    gated = _GatedBackend(piper_backend)
    app = create_app(_settings(max_concurrency=1, max_queue=0), backend=gated)
    results: dict[str, httpx.Response] = {}
    async with app.router.lifespan_context(app), _client(app) as client:

        async def first() -> None:
            results["first"] = await client.post("/v1/tts", json={"text": "Hold on."})

        async with anyio.create_task_group() as group:
            group.start_soon(first)
            await anyio.to_thread.run_sync(gated.entered.wait)
            busy = await client.post("/v1/tts", json={"text": "Me too."})
            # The event loop stayed free while the first request sat in the model call.
            assert (await client.get("/health")).status_code == 200
            gated.release.set()
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "2"
    assert busy.json()["error"]["code"] == "queue_full"
    assert results["first"].status_code == 200


async def test_not_ready_until_the_backend_is_loaded(piper_backend: PiperBackend) -> None:
    app = create_app(_settings(), backend=piper_backend)
    async with _client(app) as client:
        response = await client.post("/v1/tts", json={"text": "Too early."})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_ready"
