from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from support.metrics import sample
from support.models import word_error_rate

from comps.asr.app import create_app
from comps.asr.backends.base import Audio
from comps.asr.settings import AsrSettings
from comps.core.audio import encode_audio, encode_wav

# OPEA's README probe: a 44-byte WAV holding one 16-bit sample at 44.1 kHz.
OPEA_PROBE = "UklGRigAAABXQVZFZm10IBIAAAABAAEARKwAAIhYAQACABAAAABkYXRhAgAAAAEA"

pytestmark = pytest.mark.anyio


@pytest.fixture
def app(make_settings: Callable[..., AsrSettings], faster_backend: Any) -> FastAPI:
    return create_app(make_settings(), backend=faster_backend)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=120) as http:
            yield http


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_error(response: httpx.Response, status: int, *, param: str | None = None, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param", "request_id"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code


async def test_opea_asr_transcribes_real_speech(client: httpx.AsyncClient, spoken: dict[str, Audio]) -> None:
    for text, audio in spoken.items():
        response = await client.post("/v1/asr", json={"audio": b64(encode_wav(audio, 16_000))})
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"asr_result"}
        assert word_error_rate(text, response.json()["asr_result"]) <= 0.25, (text, response.json())


async def test_opea_asr_decodes_compressed_audio(client: httpx.AsyncClient, spoken: dict[str, Audio]) -> None:
    text, audio = next(iter(spoken.items()))
    mp3 = encode_audio(audio, 16_000, "mp3")
    response = await client.post("/v1/asr", json={"audio": b64(mp3), "language": "en"})
    assert response.status_code == 200, response.text
    assert word_error_rate(text, response.json()["asr_result"]) <= 0.25


async def test_opea_readme_probe_gets_a_short_transcript(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/asr", json={"audio": OPEA_PROBE})
    assert response.status_code == 200, response.text
    assert len(response.json()["asr_result"]) < 40


async def test_openai_formats(client: httpx.AsyncClient, spoken: dict[str, Audio]) -> None:
    text, audio = list(spoken.items())[1]
    wav = encode_wav(audio, 16_000)

    async def post(fmt: str) -> httpx.Response:
        files = {"file": ("speech.wav", wav, "audio/wav")}
        data = {"model": "whisper-1", "response_format": fmt}
        response = await client.post("/v1/audio/transcriptions", files=files, data=data)
        assert response.status_code == 200, response.text
        return response

    body = (await post("json")).json()
    assert word_error_rate(text, body["text"]) <= 0.25
    assert body["usage"] == {"type": "duration", "seconds": int(np.ceil(audio.size / 16_000))}

    plain = await post("text")
    assert plain.headers["content-type"].startswith("text/plain")
    assert plain.text.strip() == body["text"]

    verbose = (await post("verbose_json")).json()
    assert verbose["task"] == "transcribe"
    assert verbose["language"] == "english"
    assert verbose["duration"] == pytest.approx(audio.size / 16_000, abs=0.01)
    assert verbose["text"] == body["text"]
    segments = verbose["segments"]
    assert segments and [s["id"] for s in segments] == list(range(len(segments)))
    assert all(0 <= s["start"] < s["end"] <= verbose["duration"] + 0.5 for s in segments)
    assert all(s["tokens"] and s["avg_logprob"] is not None for s in segments)

    srt = (await post("srt")).text
    assert srt.startswith("1\n00:00:0") and " --> " in srt and "," in srt.splitlines()[1]
    vtt = (await post("vtt")).text
    assert vtt.startswith("WEBVTT\n\n00:00:0") and " --> " in vtt
    assert word_error_rate(text, " ".join(srt.splitlines()[2::4])) <= 0.25


async def test_model_field_accepts_loaded_name_and_whisper_1_only(
    client: httpx.AsyncClient, spoken: dict[str, Audio]
) -> None:
    wav = encode_wav(next(iter(spoken.values())), 16_000)
    for model in ("whisper-1", "tiny.en"):
        response = await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": model})
        assert response.status_code == 200, response.text
    response = await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": "large-v3"})
    assert_error(response, 400, param="model", code="model_not_found")
    assert "tiny.en" in response.json()["error"]["message"]


async def test_long_audio_is_transcribed_in_full(client: httpx.AsyncClient, long_speech: tuple[Audio, str]) -> None:
    audio, text = long_speech
    files = {"file": ("long.wav", encode_wav(audio, 16_000), "audio/wav")}
    response = await client.post("/v1/audio/transcriptions", files=files, data={"response_format": "verbose_json"})
    assert response.status_code == 200, response.text
    body = response.json()
    words = body["text"].lower()
    assert "orchestra" in words and "melody" in words and "audience" in words  # spoken after the 30 s mark
    assert "fox" in words
    assert body["segments"][-1]["end"] > 30.0
    assert word_error_rate(text, body["text"]) <= 0.25


async def test_language_is_per_request(
    make_settings: Callable[..., AsrSettings], spy: Any, spoken: dict[str, Audio]
) -> None:
    app = create_app(make_settings(), backend=spy)
    wav = b64(encode_wav(next(iter(spoken.values())), 16_000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=120) as c,
    ):
        assert (await c.post("/v1/asr", json={"audio": wav, "language": "English"})).status_code == 200
        assert (await c.post("/v1/asr", json={"audio": wav})).status_code == 200
        refused = await c.post("/v1/asr", json={"audio": wav, "language": "fr"})
        assert (await c.post("/v1/asr", json={"audio": wav})).status_code == 200
    assert [call["language"] for call in spy.calls] == ["en", None, None]
    assert_error(refused, 400, param="language", code="unsupported_language")


async def test_full_queue_answers_503_with_retry_after(
    make_settings: Callable[..., AsrSettings], gated: Any, spoken: dict[str, Audio]
) -> None:
    app = create_app(make_settings(max_concurrency=1, max_queue=0), backend=gated)
    wav = b64(encode_wav(next(iter(spoken.values())), 16_000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=120) as c,
    ):
        first = asyncio.create_task(c.post("/v1/asr", json={"audio": wav}))
        assert await anyio.to_thread.run_sync(gated.entered.wait, 30)
        busy = await c.post("/v1/asr", json={"audio": wav})
        gated.release.set()
        done = await first
    assert_error(busy, 503, code="queue_full")
    assert int(busy.headers["retry-after"]) >= 1
    assert done.status_code == 200, done.text


async def test_ops_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    assert (await client.get("/ready")).json() == {"status": "ready"}
    check = (await client.get("/v1/health_check")).json()
    assert check["Service Title"] == "asr"
    before = await client.get("/metrics")
    assert (await client.post("/v1/asr", json={"audio": OPEA_PROBE})).status_code == 200
    assert "/v1/asr" in (await client.get("/v1/statistics")).json()
    after = await client.get("/metrics")
    assert before.status_code == after.status_code == 200
    asr = {"service": "asr", "method": "POST", "path": "/v1/asr"}
    for name, labels in [
        ("avatarchat_requests_total", {**asr, "status": "200"}),
        ("avatarchat_request_duration_seconds_count", asr),
    ]:
        assert sample(after.text, name, **labels) == sample(before.text, name, **labels) + 1, name


def _wav_with_no_samples() -> bytes:
    return encode_wav(np.zeros(0, dtype=np.float32), 16_000)


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({}, 400, "audio", "validation_error"),
        ({"audio": 42}, 400, "audio", "validation_error"),
        ({"audio": ""}, 400, "audio", "empty_input"),
        ({"audio": "not base64 at all!"}, 400, "audio", "invalid_base64"),
        ({"audio": b64(b"these bytes are plain text, not a sound file" * 20)}, 400, "audio", "not_audio"),
        ({"audio": b64(_wav_with_no_samples())}, 400, "audio", "empty_audio"),
        ({"audio": OPEA_PROBE, "language": "klingon"}, 400, "language", "unsupported_language"),
    ],
)
async def test_opea_bad_input(
    client: httpx.AsyncClient, body: dict[str, object], status: int, param: str, code: str
) -> None:
    assert_error(await client.post("/v1/asr", json=body), status, param=param, code=code)


async def test_opea_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/asr", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(response, 400)


async def test_audio_over_max_duration_is_413(make_settings: Callable[..., AsrSettings], faster_backend: Any) -> None:
    app = create_app(make_settings(max_audio_seconds=1.0), backend=faster_backend)
    wav = encode_wav(np.zeros(32_000, dtype=np.float32), 16_000)  # 2 s
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        opea = await c.post("/v1/asr", json={"audio": b64(wav)})
        openai = await c.post("/v1/audio/transcriptions", files={"file": ("a.wav", wav)})
    assert_error(opea, 413, param="audio", code="audio_too_long")
    assert_error(openai, 413, param="file", code="audio_too_long")


async def test_body_over_max_size_is_413(make_settings: Callable[..., AsrSettings], faster_backend: Any) -> None:
    app = create_app(make_settings(max_body_bytes=4096), backend=faster_backend)
    wav = encode_wav(np.zeros(16_000, dtype=np.float32), 16_000)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        response = await c.post("/v1/asr", json={"audio": b64(wav)})
    assert_error(response, 413, code="body_too_large")


@pytest.mark.parametrize(
    ("files", "data", "status", "param", "code"),
    [
        (None, {"model": "whisper-1"}, 400, "file", "validation_error"),
        ({"file": ("a.wav", b"")}, {}, 400, "file", "empty_audio"),
        ({"file": ("a.txt", b"hello, this is not audio" * 10)}, {}, 400, "file", "not_audio"),
        ({"file": ("a.wav", _wav_with_no_samples())}, {}, 400, "file", "empty_audio"),
        ({"file": ("a.wav", b"x")}, {"response_format": "docx"}, 400, "response_format", "validation_error"),
        ({"file": ("a.wav", b"x")}, {"temperature": "2"}, 400, "temperature", "validation_error"),
        ({"file": ("a.wav", b"x")}, {"language": "xx"}, 400, "language", "unsupported_language"),
    ],
)
async def test_openai_bad_input(
    client: httpx.AsyncClient,
    files: dict[str, Any] | None,
    data: dict[str, str],
    status: int,
    param: str,
    code: str,
) -> None:
    response = await client.post("/v1/audio/transcriptions", files=files, data=data)
    assert_error(response, status, param=param, code=code)


async def test_not_ready_until_the_model_is_loaded(make_settings: Callable[..., AsrSettings]) -> None:
    app = create_app(make_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        # No lifespan has run: the model is not loaded.
        assert_error(await c.get("/ready"), 503, code="not_ready")
        assert_error(await c.post("/v1/asr", json={"audio": OPEA_PROBE}), 503, code="not_ready")


async def test_lifespan_loads_the_configured_backend(make_settings: Callable[..., AsrSettings]) -> None:
    app = create_app(make_settings())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        assert (await c.get("/ready")).status_code == 200
        assert app.state.backend.model_name == "tiny.en"
