"""The SadTalker mode in the animation service: official checkpoint layout, HTTP render, paste-back, errors.

Deterministic weights (the fixtures' fill rule, spectral norms fixed) are written in the official
`SadTalker_V0.0.2_256.safetensors` layout and `mapping_00229-model.pth.tar` (`sadtalker_dir`, see
`support.sadtalker_weights`), then loaded by the product loader at start-up. The generator costs
~25 s per 256 frame on 2 CPU cores: the clip is 4 frames (one batch) and the paste-back check
renders 1 frame.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from support.animation_http import check_video, envelope, serve
from support.avatar_media import astronaut
from support.models import speak
from support.wav2lip_weights import write_checkpoint

from comps.animation.app import create_app
from comps.animation.backends.sadtalker import SadTalkerMode
from comps.animation.options import SadTalkerOptions
from comps.animation.sadtalker.checkpoints import DOWNLOAD_HINT, CheckpointMissingError
from comps.animation.settings import AnimationSettings
from comps.core.audio import encode_wav

SR = 16_000
FRAMES = 4  # one generator batch
pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("two_threads")]


@pytest.fixture(scope="module")
def wav2lip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wav2lip")
    write_checkpoint(folder / "wav2lip.pth")
    return folder


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    audio = speak("Hello! I am your avatar.")
    assert audio.size > SR
    return audio


def settings_for(tmp_path: Path, shared_dir: Path, sadtalker_dir: Path, **overrides: object) -> AnimationSettings:
    values: dict[str, object] = {
        "device": "cpu",
        "inference_mode": "sadtalker",
        "sadtalker_checkpoint_dir": sadtalker_dir,
        "sadtalker_batch_size": FRAMES,
        "model_cache_dir": tmp_path / "cache",
        "offline": True,
        "face": shared_dir / "assets" / "avatar_astronaut.png",
        "avatar_dir": tmp_path / "avatars",
        "output_dir": tmp_path / "videos",
        "fps": 10.0,  # the Wav2Lip default; SadTalker renders at 25 regardless
        "max_audio_seconds": 3.0,
    } | overrides
    return AnimationSettings(**values)  # type: ignore[arg-type]


def b64(audio: np.ndarray) -> str:
    return base64.b64encode(encode_wav(audio, SR)).decode()


async def test_render_over_http_and_paste_back(
    tmp_path: Path, shared_dir: Path, sadtalker_dir: Path, wav2lip_dir: Path, speech: np.ndarray
) -> None:
    settings = settings_for(tmp_path, shared_dir, sadtalker_dir, modes=["wav2lip"], checkpoint_dir=wav2lip_dir)
    app = create_app(settings)
    clip = speech[SR // 2 : SR // 2 + FRAMES * 640 + 100]  # 4 frames and a tail shorter than one
    assert np.abs(clip).max() > 0.05  # speech, not silence
    async with serve(app) as client:
        # Refused before any work: another fps, SadTalker options on a Wav2Lip mode, audio under one frame.
        r = await client.post("/v1/animation", json={"byte_str": b64(clip), "inference_mode": "sadtalker", "fps": 12})
        envelope(r, 400, "fps_fixed")
        r = await client.post("/v1/animation", json={"byte_str": b64(clip), "inference_mode": "wav2lip", "still": True})
        assert envelope(r, 400, "option_not_supported")["param"] == "still"
        r = await client.post("/v1/animation", json={"byte_str": b64(clip[:600])})
        envelope(r, 400, "audio_too_short")
        r = await client.post("/v1/animation", json={"byte_str": b64(clip), "pose_style": 46})
        envelope(r, 400)

        body = {"byte_str": b64(clip), "inference_mode": "sadtalker", "seed": 3, "pose_style": 2}
        r = await client.post("/v1/animation", json=body | {"expression_scale": 1.2})
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["frames"], out["fps"], out["duration_s"]) == (FRAMES, 25.0, FRAMES / 25)
        check_video(Path(out["video_path"]), fps=25, seconds=clip.size / SR, frames=FRAMES)

        # The backend directly, before encoding: outside the pasted square the frame is the avatar's.
        service = app.state.animation
        backend = service.backends["sadtalker"]
        assert isinstance(backend, SadTalkerMode)
        track = service.registry.get("default").track
        assert set(track.analysis) == {"sadtalker"}  # analysed when FACE was registered, at start-up
        source = backend.source(track)
        assert source.coeffs.shape == (70,) and source.picture.shape == (256, 256, 3)
        frames = list(backend.frames(track, clip[:640], SadTalkerOptions(still=True)))
    avatar = astronaut(shared_dir)
    assert len(frames) == 1 and frames[0].shape == avatar.shape
    region = source.region
    inside = np.zeros(avatar.shape[:2], bool)
    inside[max(0, region.y) : region.y + region.side, max(0, region.x) : region.x + region.side] = True
    assert 0.05 < inside.mean() < 0.9  # the square is a part of the frame, not all of it
    assert np.array_equal(frames[0][~inside], avatar[~inside])
    assert np.abs(frames[0][inside].astype(int) - avatar[inside]).mean() > 1  # a face was pasted


async def test_missing_checkpoint_names_the_file_and_the_download(
    tmp_path: Path, shared_dir: Path, sadtalker_dir: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    app = create_app(settings_for(tmp_path, shared_dir, empty))
    with pytest.raises(CheckpointMissingError) as caught:
        async with app.router.lifespan_context(app):
            pass
    assert "SadTalker_V0.0.2_256.safetensors" in str(caught.value) and DOWNLOAD_HINT in str(caught.value)

    no_mapping = tmp_path / "no-mapping"
    no_mapping.mkdir()
    (no_mapping / "SadTalker_V0.0.2_256.safetensors").symlink_to(sadtalker_dir / "SadTalker_V0.0.2_256.safetensors")
    app = create_app(settings_for(tmp_path, shared_dir, no_mapping))
    with pytest.raises(CheckpointMissingError) as caught:
        async with app.router.lifespan_context(app):
            pass
    assert "mapping_00229-model.pth.tar" in str(caught.value) and DOWNLOAD_HINT in str(caught.value)


def test_settings_accept_sadtalkers_own_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SADTALKER_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("ANIMATION_MODES", "sadtalker,sadtalker+gfpgan")
    settings = AnimationSettings()
    assert settings.sadtalker_checkpoint_dir == tmp_path
    assert settings.modes == ["wav2lip", "sadtalker", "sadtalker+gfpgan"]
    assert (settings.sadtalker_size, settings.sadtalker_preprocess, settings.sadtalker_still) == (256, "crop", False)
    with pytest.raises(ValueError):
        AnimationSettings(sadtalker_size=384)  # type: ignore[arg-type]
