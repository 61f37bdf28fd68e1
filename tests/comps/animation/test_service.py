"""The service acts on a mode's declared capabilities: fixed fps, options, short audio, analysis, finish hooks.

Recording backends stand in for the modes (no network); the avatar registry, the store and the HTTP
app are the real ones, with the Haar detector on the astronaut.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from support.animation_http import envelope, serve

from comps.animation.app import create_app
from comps.animation.avatars import AvatarRegistry
from comps.animation.backends.base import Capabilities
from comps.animation.detect import HaarDetector
from comps.animation.options import SadTalkerOptions, given
from comps.animation.render import RenderResult
from comps.animation.service import AnimationService
from comps.animation.settings import AnimationSettings
from comps.animation.store import OutputStore
from comps.animation.track import Analysis, FaceTrack
from comps.core.audio import encode_wav
from comps.core.contracts import AnimationRequest
from comps.core.limits import InferenceQueue

SR = 16_000
pytestmark = pytest.mark.anyio


@dataclass
class Call:
    fps: float
    options: SadTalkerOptions
    analysis: set[str]


@dataclass
class Recorder:
    """A mode that writes a placeholder file and records what it was asked."""

    capabilities: Capabilities
    calls: list[Call] = field(default_factory=list)

    def render(
        self,
        track: FaceTrack,
        audio: np.ndarray,
        *,
        out_path: Path,
        fps: float,
        workdir: Path,
        options: SadTalkerOptions,
    ) -> RenderResult:
        assert workdir.is_dir()
        self.calls.append(Call(fps=fps, options=options, analysis=set(track.analysis)))
        out_path.write_bytes(b"not really an mp4")
        frames = max(1, round(audio.size * fps / SR))
        return RenderResult(frames=frames, fps=fps, duration_s=frames / fps)


@dataclass
class Analyzer:
    name: str = "fake"
    version: str = "1"
    seen: int = 0

    def analyze(self, track: FaceTrack) -> Analysis:
        self.seen += 1
        return {"first_box": track.boxes[0]}


def settings_for(tmp_path: Path, shared_dir: Path, **overrides: object) -> AnimationSettings:
    values: dict[str, object] = {
        "device": "cpu",
        "face": shared_dir / "assets" / "avatar_astronaut.png",
        "avatar_dir": tmp_path / "avatars",
        "output_dir": tmp_path / "videos",
        "model_cache_dir": tmp_path / "cache",
        "offline": True,
        "fps": 10.0,
    } | overrides
    return AnimationSettings(**values)  # type: ignore[arg-type]


def wav_b64(seconds: float) -> str:
    tone = 0.3 * np.sin(np.arange(int(seconds * SR)) * 2 * np.pi * 220 / SR).astype(np.float32)
    return base64.b64encode(encode_wav(tone, SR)).decode()


async def test_a_fixed_rate_mode_with_options(tmp_path: Path, shared_dir: Path) -> None:
    analyzer = Analyzer()
    capabilities = Capabilities(
        fixed_fps=25.0, options=frozenset({"still", "seed"}), min_audio_frames=1, analyzer=analyzer
    )
    backend = Recorder(capabilities)
    async with serve(create_app(settings_for(tmp_path, shared_dir), backend)) as client:
        envelope(await client.post("/v1/animation", json={"byte_str": wav_b64(0.5), "fps": 12}), 400, "fps_fixed")
        r = await client.post("/v1/animation", json={"byte_str": wav_b64(0.5), "still": True, "pose_style": 3})
        assert envelope(r, 400, "option_not_supported")["param"] == "pose_style"  # declared: still, seed only
        r = await client.post("/v1/animation", json={"byte_str": wav_b64(0.03)})
        assert "one video frame (40 ms)" in envelope(r, 400, "audio_too_short")["message"]
        assert backend.calls == []  # every refusal before the render

        r = await client.post("/v1/animation", json={"byte_str": wav_b64(0.4), "still": True, "seed": 7, "fps": 25})
        assert r.status_code == 200, r.text
        assert (r.json()["fps"], r.json()["frames"]) == (25.0, 10)
        r = await client.post("/v1/wav2lip", json={"audio": wav_b64(0.4)})
        assert r.status_code == 200, r.text
    first, second = backend.calls
    assert first.fps == second.fps == 25.0  # the mode's rate, not FPS=10
    assert (first.options.still, first.options.seed, first.options.pose_style) == (True, 7, None)
    assert given(second.options) == []
    assert first.analysis == {"fake"} and analyzer.seen == 1  # the default avatar, analysed once at start-up


async def test_a_free_rate_mode_refuses_every_option(tmp_path: Path, shared_dir: Path) -> None:
    backend = Recorder(Capabilities())
    async with serve(create_app(settings_for(tmp_path, shared_dir), backend)) as client:
        r = await client.post("/v1/animation", json={"byte_str": wav_b64(0.5), "seed": 1, "blink": False})
        error = envelope(r, 400, "option_not_supported")
        assert error["param"] == "blink" and error["message"].startswith("blink, seed:")  # the contract's order
        r = await client.post("/v1/animation", json={"byte_str": wav_b64(0.03)})  # any clip renders: no minimum
        assert r.status_code == 200, r.text
        r = await client.post("/v1/animation", json={"byte_str": wav_b64(0.5), "fps": 12})
        assert r.status_code == 200, r.text
    assert [c.fps for c in backend.calls] == [10.0, 12.0]  # FPS from the settings, then the request's
    assert all(c.analysis == set() for c in backend.calls)


def test_shutdown_runs_each_shared_finish_hook_once(tmp_path: Path) -> None:
    finished: list[str] = []
    shared = Capabilities(finish=lambda: finished.append("shared"))
    own = Capabilities(finish=lambda: finished.append("own"))
    service = AnimationService(
        settings=AnimationSettings(device="cpu"),  # type: ignore[call-arg]
        backends={"a": Recorder(shared), "b": Recorder(shared), "c": Recorder(own), "d": Recorder(Capabilities())},
        registry=AvatarRegistry(root=tmp_path / "a", detector=HaarDetector(), max_frames=1, max_side=96, cache_size=1),
        store=OutputStore(root=tmp_path / "v", retention=1),
        queue=InferenceQueue(concurrency=1, max_waiting=0),
    )
    service.finish()
    assert finished == ["shared", "own"]


def test_a_request_is_its_own_options() -> None:
    request = AnimationRequest(byte_str="x", inference_mode="sadtalker", input_yaw=[10, -10], expression_scale=0.5)
    assert given(request) == ["expression_scale", "input_yaw"]  # byte_str, inference_mode are not options


async def test_unknown_and_disabled_modes(tmp_path: Path, shared_dir: Path) -> None:
    backend = Recorder(Capabilities())
    async with serve(create_app(settings_for(tmp_path, shared_dir), backend)) as client:
        post = client.post
        r = await post("/v1/animation", json={"byte_str": wav_b64(0.2), "inference_mode": "musetalk"})
        envelope(r, 400, "unknown_mode")
        r = await post("/v1/animation", json={"byte_str": wav_b64(0.2), "inference_mode": "sadtalker"})
        envelope(r, 400, "mode_not_enabled")
