"""The whole pipeline on the real small models: a spoken question in, an mp4 out whose audio is the TTS answer."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from support.animation_http import check_speech_video
from support.models import speak_wav, word_error_rate

from comps.core.audio import decode_audio
from comps.core.contracts import AsrRequest
from comps.core.sampling import SamplingParameters
from comps.core.sse import parse_sse
from gateway.app import create_app
from gateway.settings import GatewaySettings
from megaservice.asgi import StreamingASGITransport
from megaservice.avatarchatbot import STAGES, AvatarChatbot, AvatarParameters, stage_node
from megaservice.transport import AiohttpTransport

pytestmark = pytest.mark.slow

QUESTION = "What is the weather like today?"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
# A few tokens keep the answer, and so the video to render, short.
PARAMS = AvatarParameters(sampling=SamplingParameters(max_tokens=8, temperature=0.0))


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
async def test_gateway_answers_as_opea_and_detailed_with_the_real_services(
    real_services: dict[str, Any], tmp_path: Path
) -> None:
    bot = chatbot(real_services)
    app = create_app(GatewaySettings(max_tokens=8), orchestrator=bot)
    audio = base64.b64encode(speak_wav(QUESTION)).decode()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=None) as client:
            opea = await client.post("/v1/avatarchatbot", json={"audio": audio, "max_tokens": 8, "voice": "default"})
            assert opea.status_code == 200, opea.text
            opea_path = Path(opea.json())  # OPEA's answer: the animation service's path, `<store>/<id>.mp4`
            served = await client.get(f"/v1/videos/{opea_path.stem}")
            detailed = await client.post("/v1/avatarchatbot", json={"text": "Hello there!", "detailed": True})
            body = detailed.json()
            video = await client.get(body["video_url"], headers={"Range": "bytes=0-99"})
    await bot.aclose()
    assert opea_path.suffix == ".mp4"
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    assert served.content == opea_path.read_bytes()  # the gateway serves the very file OPEA's answer names
    mp4 = tmp_path / "opea.mp4"
    mp4.write_bytes(served.content)
    spoken = decode_audio(served.content, sample_rate=16_000)
    # As long as the speech it carries: the decoded AAC track runs up to one AAC frame (1024 samples)
    # past the speech, so that much more slack than the one frame of the rounding.
    check_speech_video(mp4, seconds=spoken.size / 16_000, slack_s=1024 / 16_000)
    assert detailed.status_code == 200, body
    assert body["transcript"] == "Hello there!" and body["answer"].strip()
    assert set(body["timings"]) == {"llm", "tts", "animation", "total"}
    assert video.status_code == 206 and len(video.content) == 100


class HeldLlmTail(httpx.AsyncBaseTransport):
    """Passes every call through, but holds back the LLM stream's last text delta (and what follows) until `release`.

    While it is held the LLM has demonstrably not finished, so video that reaches the client then was made
    from speech before the answer was complete: an ordering fact, not a race between a fast tiny LLM and
    a slow render. Were the video made only after the LLM's end, the stream would stall until the LLM node's
    timeout and fail.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, *, release: anyio.Event) -> None:
        self.inner = inner
        self.release = release

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path != "/v1/chat/completions":
            return response
        return httpx.Response(
            response.status_code, headers=response.headers, stream=_HeldTail(response, self.release), request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class _HeldTail(httpx.AsyncByteStream):
    def __init__(self, upstream: httpx.Response, release: anyio.Event) -> None:
        self.upstream = upstream
        self.release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # The tiny LLM writes its few tokens at once, so the whole body is read first, then split in two.
        events = b"".join([chunk async for chunk in self.upstream.aiter_raw()]).split(b"\n\n")
        last = max(i for i, event in enumerate(events) if _delta_text(event))
        yield b"".join(event + b"\n\n" for event in events[:last])
        await self.release.wait()
        yield b"\n\n".join(events[last:])

    async def aclose(self) -> None:
        await self.upstream.aclose()


def _delta_text(event: bytes) -> str:
    if not event.startswith(b"data: {"):
        return ""
    return str(json.loads(event[6:])["choices"][0]["delta"].get("content") or "")


@pytest.mark.anyio
async def test_streamed_answer_plays_one_growing_video_while_the_llm_is_still_writing(
    real_services: dict[str, Any], tmp_path: Path
) -> None:
    release = anyio.Event()
    nodes = {s: stage_node(s, ("127.0.0.1", real_services[s].port), timeout_s=300, retries=0) for s in STAGES}
    transport = HeldLlmTail(AiohttpTransport(connect_timeout_s=5, max_connections=16), release=release)
    video = bytearray()
    partial = tmp_path / "partial.mp4"

    async def watch(client: httpx.AsyncClient, url: str) -> None:
        async with client.stream("GET", url) as response:
            assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
            async for chunk in response.aiter_raw():
                video.extend(chunk)
                if b"moof" in video and not release.is_set():
                    partial.write_bytes(video)  # the first fragment, while the LLM is held
                    release.set()

    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(None, connect=5), trust_env=False) as hops:
        bot = AvatarChatbot(nodes, client=hops)
        app = create_app(GatewaySettings(max_tokens=24), orchestrator=bot)
        events: list[tuple[str | None, Any]] = []
        async with app.router.lifespan_context(app):
            gateway = StreamingASGITransport(app)  # httpx's ASGITransport would hand over the body only at its end
            async with (
                httpx.AsyncClient(transport=gateway, base_url="http://gw", timeout=None) as client,
                anyio.create_task_group() as group,
            ):
                body = {"text": "Tell me a story.", "temperature": 0}
                async with client.stream("POST", "/v1/avatarchatbot/stream", json=body) as response:
                    assert response.status_code == 200
                    async for event in parse_sse(response.aiter_lines()):
                        events.append((event.event, event.data))
                        if event.event == "video":
                            group.start_soon(watch, client, event.data["url"])
    names = [name for name, _ in events]
    assert names[:2] == ["transcript", "video"] and names[-1] == "done", names
    assert set(names[2:-1]) == {"answer"}, names  # no per-sentence segments: one video
    done = events[-1][1]
    assert done["answer"] == "".join(data["delta"] for name, data in events if name == "answer")
    assert done["video_url"] == events[1][1]["url"]
    assert release.is_set()  # the first fragment arrived while the LLM's last delta was held back
    assert streams(partial) == ["audio", "video"]  # the incomplete fMP4 is already a valid MP4
    whole = tmp_path / "whole.mp4"
    whole.write_bytes(video)
    check_speech_video(whole, seconds=done["duration_s"], slack_s=1024 / 16_000)


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


@pytest.mark.anyio
async def test_a_client_that_leaves_mid_answer_stops_every_stage(real_services: dict[str, Any]) -> None:
    animation = real_services["animation"].server.config.app.state.animation
    bot = chatbot(real_services)
    app = create_app(GatewaySettings(max_tokens=48), orchestrator=bot)
    async with app.router.lifespan_context(app):
        gateway = StreamingASGITransport(app)
        body = {"text": "Tell me a story."}
        async with (
            httpx.AsyncClient(transport=gateway, base_url="http://gw", timeout=None) as client,
            client.stream("POST", "/v1/avatarchatbot/stream", json=body) as response,
        ):
            async for event in parse_sse(response.aiter_lines()):
                if event.event == "video":
                    video_id = event.data["id"]
                    break  # the person closes the page as the answer starts
        with anyio.fail_after(60):  # a generous deadline, not a measurement
            while video_id in animation.live or animation.queue.busy or app.state.admission.busy:
                await anyio.sleep(0.05)
    await bot.aclose()
    assert not list(animation.store.root.glob("*.partial.mp4"))  # the unfinished video is removed
    assert video_id not in animation.store.ids()  # and never committed
