"""SadTalker beyond the default: analysis at registration, head angles and blinks, and `full` + 512 + GFPGAN.

Same deterministic checkpoints as test_sadtalker_backend.py (`sadtalker_dir`). Each render is one
frame: the generator costs ~25 s per frame at 256 and about a minute at 512 on 2 CPU cores.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.animation_http import envelope, ffprobe, serve
from support.gfpgan_weights import write_gfpgan_checkpoint
from support.models import speak

from comps.animation.analysis import analysis_path, load_analysis
from comps.animation.app import create_app
from comps.animation.backends.sadtalker import SadTalkerAnalyzer, SadTalkerMode
from comps.animation.sadtalker.align import align_face
from comps.animation.sadtalker.pipeline import SadTalkerPipeline
from comps.animation.settings import AnimationSettings
from comps.core.audio import encode_wav

SR = 16_000
pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("two_threads")]


@pytest.fixture(scope="module")
def one_frame() -> str:
    """40 ms of real speech (one video frame), base64 WAV."""
    audio = speak("Hello there.")
    clip = audio[SR // 4 : SR // 4 + 640]
    assert np.abs(clip).max() > 0.02
    return base64.b64encode(encode_wav(clip, SR)).decode()


def settings_for(tmp_path: Path, sadtalker_dir: Path, **overrides: object) -> AnimationSettings:
    values: dict[str, object] = {
        "device": "cpu",
        "inference_mode": "sadtalker",
        "sadtalker_checkpoint_dir": sadtalker_dir,
        "model_cache_dir": tmp_path / "cache",
        "offline": True,
        "avatar_dir": tmp_path / "avatars",
        "output_dir": tmp_path / "videos",
        "max_audio_seconds": 3.0,
        "face": None,  # no default avatar unless a test names one: it is analysed again at every start
    } | overrides
    return AnimationSettings(**values)  # type: ignore[arg-type]


async def test_avatar_is_analysed_at_registration_and_reused_after_restart(
    tmp_path: Path, shared_dir: Path, sadtalker_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = (shared_dir / "assets" / "avatar_astronaut.png").read_bytes()
    settings = settings_for(tmp_path, sadtalker_dir)
    app = create_app(settings)
    async with serve(app) as client:
        r = await client.post("/v1/avatars", files={"file": ("astro.png", png, "image/png")})
        assert r.status_code == 201, r.text
        avatar_id = r.json()["id"]
        backend = app.state.animation.backends["sadtalker"]
        assert isinstance(backend, SadTalkerMode)
        stored = load_analysis(analysis_path(settings.avatar_dir / avatar_id, "sadtalker"), backend.analyzer.version)
        assert stored is not None
        assert stored["coeffs"].shape == (70,) and np.isfinite(stored["coeffs"]).all()
        region = stored["region"]
        assert region.shape == (3,) and 0 < region[2] <= 512

    def never(self: SadTalkerAnalyzer, track: Any) -> None:
        raise AssertionError("the avatar was analysed again")

    monkeypatch.setattr(SadTalkerAnalyzer, "analyze", never)
    restarted = create_app(settings)
    async with serve(restarted):
        track = restarted.state.animation.registry.get(avatar_id).track
        assert np.array_equal(track.analysis["sadtalker"]["coeffs"], stored["coeffs"])


async def test_head_angles_and_blinks_reach_the_renderer(
    tmp_path: Path, shared_dir: Path, sadtalker_dir: Path, one_frame: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    render = SadTalkerPipeline.render

    def spy(self: SadTalkerPipeline, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return render(self, *args, **kwargs)

    monkeypatch.setattr(SadTalkerPipeline, "render", spy)
    settings = settings_for(tmp_path, sadtalker_dir, face=shared_dir / "assets" / "avatar_astronaut.png")
    async with serve(create_app(settings)) as client:
        for bad in ({"input_yaw": [120.0]}, {"input_pitch": []}, {"input_roll": "up"}, {"input_yaw": [0.0] * 65}):
            r = await client.post("/v1/animation", json={"byte_str": one_frame} | bad)
            envelope(r, 400)
        assert seen == []
        body = {"byte_str": one_frame, "input_yaw": [20, -20], "input_roll": [5], "still": True, "blink": True}
        r = await client.post("/v1/animation", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["frames"] == 1
    assert len(seen) == 1
    assert (seen[0]["yaw"], seen[0]["pitch"], seen[0]["roll"]) == ((20.0, -20.0), None, (5.0,))
    assert (seen[0]["still"], seen[0]["blink"]) == (True, True)


async def test_full_preprocess_at_512_with_gfpgan(
    tmp_path: Path, shared_dir: Path, sadtalker_dir: Path, one_frame: str
) -> None:
    write_gfpgan_checkpoint(tmp_path / "weights" / "GFPGANv1.4.pth")
    settings = settings_for(
        tmp_path,
        sadtalker_dir,
        inference_mode="sadtalker+gfpgan",
        sadtalker_size=512,
        sadtalker_preprocess="full",
        checkpoint_dir=tmp_path / "weights",
        upscale_factor=2,
        face=shared_dir / "assets" / "avatar_astronaut.png",
    )
    app = create_app(settings)
    async with serve(app) as client:
        backend = app.state.animation.backends["sadtalker+gfpgan"]
        assert isinstance(backend, SadTalkerMode) and backend.enhancer is not None
        assert backend.pipeline.size == 512 and backend.pipeline.full
        assert backend.pipeline.nets.mapping.state_dict()["first.0.weight"].shape[1] == 73  # mapping_00109

        track = app.state.animation.registry.get("default").track
        source = backend.source(track)
        assert source.picture.shape == (512, 512, 3) and source.coeffs.shape == (73,)
        # The full modes' last three coefficients are the alignment's [s, tx, ty] on the 512 picture.
        assert track.landmarks is not None
        region = source.region
        points = (track.landmarks[0] - np.array([region.x, region.y], np.float32)) * (512 / region.side)
        np.testing.assert_allclose(source.coeffs[70:], align_face(source.picture, points).params, rtol=1e-6)

        r = await client.post("/v1/animation", json={"byte_str": one_frame, "seed": 1})
        assert r.status_code == 200, r.text
        out = r.json()
    assert (out["frames"], out["fps"]) == (1, 25.0)
    streams = {s["codec_type"]: s for s in ffprobe(Path(out["video_path"]))["streams"]}
    video = streams["video"]
    assert (video["codec_name"], streams["audio"]["codec_name"], int(video["nb_read_frames"])) == ("h264", "aac", 1)
    assert (video["width"], video["height"]) == (1024, 1024)  # GFPGAN's upscale 2 on the 512 avatar
