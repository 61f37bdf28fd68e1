"""The whole pipeline on the real small models: a spoken question in, an mp4 out whose audio is the TTS answer."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from support.models import speak_wav, word_error_rate

from comps.core.audio import decode_audio
from comps.core.contracts import AsrRequest
from gateway.app import create_app
from gateway.settings import GatewaySettings
from megaservice.avatarchatbot import STAGES, AvatarChatbot, AvatarParameters, stage_node

pytestmark = pytest.mark.slow

QUESTION = "What is the weather like today?"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
# A few tokens keep the answer, and so the video to render, short.
PARAMS = AvatarParameters(max_tokens=8, temperature=0.0)


def chatbot(real_services: dict[str, Any]) -> AvatarChatbot:
    nodes = {s: stage_node(s, ("127.0.0.1", real_services[s].port), timeout_s=300, retries=0) for s in STAGES}
    return AvatarChatbot(nodes)


def streams(mp4: Path) -> list[str]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "json", str(mp4)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return sorted(s["codec_type"] for s in json.loads(probe.stdout)["streams"])


def best_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation at the best lag within ±100 ms (16 kHz), over the shorter length."""
    n = min(a.size, b.size)
    best = 0.0
    for lag in range(-1600, 1601, 8):
        x = a[max(0, lag) : n + min(0, lag)]
        y = b[max(0, -lag) : n - max(0, lag)]
        m = min(x.size, y.size)
        x, y = x[:m] - x[:m].mean(), y[:m] - y[:m].mean()
        denominator = float(np.linalg.norm(x) * np.linalg.norm(y)) or 1.0
        best = max(best, float(np.dot(x, y)) / denominator)
    return best


@pytest.mark.anyio
async def test_spoken_question_becomes_an_mp4_whose_audio_track_is_the_tts_answer(
    real_services: dict[str, Any], tmp_path: Path
) -> None:
    bot = chatbot(real_services)
    audio = base64.b64encode(speak_wav(QUESTION)).decode()
    try:
        results, graph = await bot.whole.schedule(AsrRequest(audio=audio), PARAMS)
        video = results["animation"]
        response = await bot.client.get(f"{bot.nodes['animation'].base_url}/v1/videos/{video.id}")
    finally:
        await bot.aclose()
    assert word_error_rate(QUESTION, results["asr"].asr_result) <= 0.25, results["asr"].asr_result
    assert results["llm"].text.strip()
    assert [r.status for r in graph.records.values()] == ["ok"] * 4
    assert response.status_code == 200
    mp4 = tmp_path / "answer.mp4"
    mp4.write_bytes(response.content)
    assert streams(mp4) == ["audio", "video"]
    speech = decode_audio(base64.b64decode(results["tts"].tts_result), sample_rate=16_000)
    track = decode_audio(mp4.read_bytes(), sample_rate=16_000)
    assert abs(track.size - speech.size) / 16_000 < 0.2, (track.size, speech.size)
    assert best_correlation(track, speech) > 0.9


@pytest.mark.anyio
async def test_gateway_answers_as_opea_and_detailed_with_the_real_services(real_services: dict[str, Any]) -> None:
    bot = chatbot(real_services)
    app = create_app(GatewaySettings(max_tokens=8), orchestrator=bot)
    audio = base64.b64encode(speak_wav(QUESTION)).decode()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=None) as client:
            opea = await client.post("/v1/avatarchatbot", json={"audio": audio, "max_tokens": 8, "voice": "default"})
            detailed = await client.post("/v1/avatarchatbot", json={"text": "Hello there!", "detailed": True})
            body = detailed.json()
            video = await client.get(body["video_url"], headers={"Range": "bytes=0-99"})
    await bot.aclose()
    assert opea.status_code == 200, opea.text
    assert isinstance(opea.json(), str) and "mp4" in opea.text
    assert detailed.status_code == 200, body
    assert body["transcript"] == "Hello there!" and body["answer"].strip()
    assert set(body["timings"]) == {"llm", "tts", "animation", "total"}
    assert video.status_code == 206 and len(video.content) == 100


@pytest.mark.anyio
async def test_streamed_answer_gives_ordered_playable_segments(real_services: dict[str, Any]) -> None:
    bot = chatbot(real_services)
    app = create_app(GatewaySettings(max_tokens=12), orchestrator=bot)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=None) as client:
            response = await client.post(
                "/v1/avatarchatbot/stream", json={"text": "Tell me a story.", "temperature": 0}
            )
            events = [block for block in response.text.strip().split("\n\n")]
            segments = [json.loads(b.split("data: ", 1)[1]) for b in events if b.startswith("event: segment")]
            videos = [await client.get(s["video_url"]) for s in segments]
    await bot.aclose()
    assert events[0].startswith("event: transcript") and events[-2].startswith("event: done"), events[-3:]
    assert segments and [s["index"] for s in segments] == list(range(len(segments)))
    assert all(v.status_code == 200 and v.content[4:8] == b"ftyp" for v in videos)


def test_ask_runs_the_pipeline_in_process_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from support.models import piper_voice_paths, whisper_tiny_dir
    from support.tiny_llm import build_tiny_llm
    from support.wav2lip_weights import write_checkpoint

    from cli.main import main

    folder = tmp_path_factory.mktemp("ask")
    environment = {
        "MODEL_CACHE_DIR": str(folder), "AVATARCHAT_OFFLINE": "1", "GATEWAY_MAX_TOKENS": "8",
        "ASR_DEVICE": "cpu", "ASR_BACKEND": "faster-whisper", "ASR_MODEL": str(whisper_tiny_dir()),
        "ASR_BEAM_SIZE": "1",
        "LLM_DEVICE": "cpu", "LLM_MODEL_ID": str(build_tiny_llm(folder / "tiny-llm")),
        "TTS_DEVICE": "cpu", "TTS_BACKEND": "piper", "TTS_MODEL": str(piper_voice_paths().model),
        "ANIMATION_DEVICE": "cpu", "ANIMATION_CHECKPOINT_PATH": str(write_checkpoint(folder / "wav2lip.pth")),
        "ANIMATION_FACE": str(SHARED / "assets" / "avatar_astronaut.png"),
        "ANIMATION_AVATAR_DIR": str(folder / "avatars"), "ANIMATION_OUTPUT_DIR": str(folder / "videos"),
    }  # fmt: skip
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    question = folder / "question.wav"
    question.write_bytes(speak_wav(QUESTION))
    output = folder / "answer.mp4"
    code = main(["ask", str(question), "-o", str(output)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert streams(output) == ["audio", "video"]
    assert "[asr] done" in err and 'heard "' in err and "[animation] done" in err
