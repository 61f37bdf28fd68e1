"""The Wav2Lip render pipeline on the astronaut avatar with real speech and the deterministic weights."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from support.animation_http import ffprobe
from support.models import speak
from support.wav2lip_weights import deterministic_wav2lip

from comps.animation.encode import EncodeError
from comps.animation.render import Wav2LipRenderer
from comps.animation.track import FaceTrack
from comps.animation.wav2lip.network import Wav2Lip
from comps.core.device import resolve_device

SR = 16_000
CPU = resolve_device("cpu")


def haar_box(image: np.ndarray) -> np.ndarray:
    """The largest Haar face, padded as upstream Wav2Lip pads (top 0, bottom 10, left 0, right 0), clipped."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
    assert len(faces) >= 1, "the astronaut's face must be detectable"
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return np.array([y, min(image.shape[0], y + h + 10), x, min(image.shape[1], x + w)], dtype=np.int64)


@pytest.fixture(scope="module")
def avatar(shared_dir: Path) -> np.ndarray:
    image = cv2.imread(str(shared_dir / "assets" / "avatar_astronaut.png"))
    assert image is not None
    return image


@pytest.fixture(scope="module")
def track(avatar: np.ndarray) -> FaceTrack:
    box = haar_box(avatar)
    y1, y2, x1, x2 = box
    assert 60 < y1 < 75 and 165 < y2 < 180 and 170 < x1 < 185 and 265 < x2 < 280  # the face, verified by eye
    return FaceTrack(frames=(avatar,), boxes=box[None])


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Exactly two seconds of real speech (Piper), trimmed or padded with silence."""
    audio = speak("Hello! I am your avatar, and I can talk.")
    out = np.zeros(2 * SR, np.float32)
    out[: min(audio.size, out.size)] = audio[: out.size]
    assert np.abs(out).max() > 0.1
    return out


@pytest.fixture(scope="module")
def model() -> Wav2Lip:
    return deterministic_wav2lip()


@pytest.fixture(scope="module")
def frames_25(model: Wav2Lip, track: FaceTrack, speech: np.ndarray) -> list[np.ndarray]:
    renderer = Wav2LipRenderer(model=model, device=CPU, batch_size=16)
    return list(renderer.frames(track, speech, fps=25.0, enhance=False))


def outside_box(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    y1, y2, x1, x2 = box
    keep = np.ones(frame.shape[:2], bool)
    keep[y1:y2, x1:x2] = False
    return frame[keep]


def test_every_pixel_outside_the_padded_box_is_the_avatars(
    frames_25: list[np.ndarray], track: FaceTrack, avatar: np.ndarray
) -> None:
    box = track.boxes[0]
    for frame in frames_25:
        assert frame.shape == avatar.shape and frame.dtype == np.uint8
        np.testing.assert_array_equal(outside_box(frame, box), outside_box(avatar, box))


def test_the_box_is_the_network_output(frames_25: list[np.ndarray], track: FaceTrack, avatar: np.ndarray) -> None:
    y1, y2, x1, x2 = track.boxes[0]
    assert all(np.abs(f[y1:y2, x1:x2].astype(int) - avatar[y1:y2, x1:x2]).mean() > 1 for f in frames_25)


def test_the_mouth_half_changes_over_time(frames_25: list[np.ndarray], track: FaceTrack) -> None:
    y1, y2, x1, x2 = track.boxes[0]
    lower = np.stack([f[(y1 + y2) // 2 : y2, x1:x2] for f in frames_25]).astype(np.int16)
    steps = np.abs(np.diff(lower, axis=0)).mean(axis=(1, 2, 3))  # mean change between consecutive frames
    assert (steps > 0.5).sum() >= 10  # speech moves the mouth on many frames, not once
    distinct = {hash(m.tobytes()) for m in lower}
    assert len(distinct) >= 20


def test_frame_count_is_the_audio_duration(frames_25: list[np.ndarray]) -> None:
    assert len(frames_25) == 50


@pytest.mark.parametrize(("seconds", "fps"), [(0.7, 25.0), (0.7, 29.97), (0.9, 12.5), (0.33, 60.0)])
def test_frame_count_for_any_fps(model: Wav2Lip, track: FaceTrack, seconds: float, fps: float) -> None:
    audio = (0.05 * np.sin(np.arange(int(seconds * SR)) * 0.05)).astype(np.float32)
    renderer = Wav2LipRenderer(model=model, device=CPU, batch_size=24)
    count = sum(1 for _ in renderer.frames(track, audio, fps=fps, enhance=False))
    assert abs(count - audio.size / SR * fps) <= 0.5  # the video's length is the audio's within half a frame


def test_silent_audio_renders_a_mouth_at_rest(model: Wav2Lip, track: FaceTrack, avatar: np.ndarray) -> None:
    renderer = Wav2LipRenderer(model=model, device=CPU, batch_size=16)
    frames = list(renderer.frames(track, np.zeros(SR // 2, np.float32), fps=25.0, enhance=False))
    assert len(frames) == 13
    for frame in frames:  # silence gives the same window every frame: a still face
        np.testing.assert_array_equal(frame, frames[0])
    np.testing.assert_array_equal(outside_box(frames[0], track.boxes[0]), outside_box(avatar, track.boxes[0]))


def test_a_compiled_renderers_last_batch_is_padded_to_the_fixed_size(
    model: Wav2Lip, track: FaceTrack, speech: np.ndarray
) -> None:
    audio = speech[: int(1.48 * SR)]  # 37 frames at 25 fps
    seen: list[tuple[int, ...]] = []
    renderer = Wav2LipRenderer(model=model, device=CPU, batch_size=16)
    renderer._net.register_forward_pre_hook(lambda _m, args: seen.append((args[0].shape[0], args[1].shape[0])))
    exact = list(renderer.frames(track, audio, fps=25, enhance=False))
    assert seen == [(16, 16), (16, 16), (5, 5)]  # uncompiled: a short batch costs only its frames
    seen.clear()
    renderer.compiled = True  # what compile=True sets (compiling itself takes minutes on a CPU)
    padded = list(renderer.frames(track, audio, fps=25, enhance=False))
    assert seen == [(16, 16)] * 3  # 16 + 16 + 5 real frames, the last call padded with 11 copies
    assert len(padded) == len(exact) == 37
    for a, b in zip(padded, exact, strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1
    single = list(Wav2LipRenderer(model=model, device=CPU, batch_size=37).frames(track, audio, fps=25, enhance=False))
    for a, b in zip(padded, single, strict=True):  # padding changes nothing (kernels may differ by one level)
        assert np.abs(a.astype(int) - b).max() <= 1


def test_bf16_is_close_to_our_fp32(model: Wav2Lip, track: FaceTrack, speech: np.ndarray) -> None:
    # No AVX-512 BF16 here: bf16 convolutions are slow, so compare only two frames.
    audio = speech[int(0.6 * SR) : int(0.68 * SR)]
    fp32 = list(Wav2LipRenderer(model=model, device=CPU, batch_size=2).frames(track, audio, fps=25, enhance=False))
    bf16 = list(
        Wav2LipRenderer(model=model, device=CPU, batch_size=2, bf16=True).frames(track, audio, fps=25, enhance=False)
    )
    assert len(fp32) == len(bf16) == 2
    y1, y2, x1, x2 = track.boxes[0]
    for a, b in zip(fp32, bf16, strict=True):
        np.testing.assert_array_equal(outside_box(a, track.boxes[0]), outside_box(b, track.boxes[0]))
        diff = np.abs(a[y1:y2, x1:x2].astype(int) - b[y1:y2, x1:x2])
        # The README warns bf16 moves these random weights' outputs a lot; on real faces the
        # difference stays small on average (measured ~5 of 255) with rare large pixels.
        assert diff.mean() < 12
        assert np.percentile(diff, 90) < 40


def test_errors_in_the_worker_reach_the_caller(model: Wav2Lip, track: FaceTrack, speech: np.ndarray) -> None:
    def boom(_module: torch.nn.Module, _args: object) -> None:
        raise RuntimeError("boom in the network")

    renderer = Wav2LipRenderer(model=model, device=CPU, batch_size=4)
    renderer._net.register_forward_pre_hook(boom)
    with pytest.raises(RuntimeError, match="boom in the network"):
        list(renderer.frames(track, speech, fps=25, enhance=False))
    assert not [t for t in threading.enumerate() if t.name == "wav2lip-generate"]


def test_closing_early_stops_the_worker(model: Wav2Lip, track: FaceTrack, speech: np.ndarray) -> None:
    stream: Iterator[np.ndarray] = Wav2LipRenderer(model=model, device=CPU, batch_size=2).frames(
        track, speech, fps=25, enhance=False
    )
    first = next(stream)
    assert first.shape == track.frames[0].shape
    stream.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name == "wav2lip-generate"]


def test_encoder_failure_stops_the_worker(model: Wav2Lip, track: FaceTrack, speech: np.ndarray, tmp_path: Path) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'no space left on device' >&2\nexit 3\n")
    fake.chmod(0o755)
    renderer = Wav2LipRenderer(model=model, device=CPU, batch_size=2, ffmpeg=str(fake))
    with pytest.raises(EncodeError, match="no space left"):
        renderer.render(track, speech, out_path=tmp_path / "o.mp4", fps=25, enhance=False, workdir=tmp_path / "w")
    assert not [t for t in threading.enumerate() if t.name == "wav2lip-generate"]
    assert not (tmp_path / "o.mp4").exists()


def test_compile_goes_through_the_device(model: Wav2Lip) -> None:
    renderer = Wav2LipRenderer(model=model, device=CPU, compile=True)  # torch.compile is lazy: nothing runs here
    assert isinstance(renderer._net, torch._dynamo.eval_frame.OptimizedModule)
    assert isinstance(renderer._net._orig_mod, Wav2Lip)
    assert not isinstance(Wav2LipRenderer(model=model, device=CPU)._net, torch._dynamo.eval_frame.OptimizedModule)


def test_bad_requests_fail_before_any_work(model: Wav2Lip, track: FaceTrack) -> None:
    renderer = Wav2LipRenderer(model=model, device=CPU)
    with pytest.raises(ValueError, match="audio"):
        renderer.frames(track, np.zeros(0, np.float32), fps=25, enhance=False)
    with pytest.raises(ValueError, match="fps"):
        renderer.frames(track, np.zeros(SR, np.float32), fps=0, enhance=False)
    with pytest.raises(ValueError, match="enhancer"):
        renderer.frames(track, np.zeros(SR, np.float32), fps=25, enhance=True)
    with pytest.raises(ValueError, match="batch_size"):
        Wav2LipRenderer(model=model, device=CPU, batch_size=0)


def test_render_writes_h264_and_aac_of_the_audio_length(
    model: Wav2Lip, track: FaceTrack, speech: np.ndarray, tmp_path: Path
) -> None:
    renderer = Wav2LipRenderer(model=model, device=CPU, batch_size=8)
    out = tmp_path / "out.mp4"
    result = renderer.render(track, speech, out_path=out, fps=10.0, enhance=False, workdir=tmp_path / "work")
    assert (result.frames, result.fps, result.duration_s) == (20, 10.0, 2.0)
    assert (tmp_path / "work" / "audio.wav").is_file()
    info = ffprobe(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
    assert audio["codec_name"] == "aac"
    assert video["r_frame_rate"] == "10/1"
    assert int(video["nb_read_frames"]) == 20
    assert (video["width"], video["height"]) == (512, 512)
    assert abs(float(info["format"]["duration"]) - 2.0) <= 1 / 10
    assert abs(float(video["duration"]) - 2.0) <= 1 / 10
