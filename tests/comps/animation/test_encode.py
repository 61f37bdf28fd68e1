"""The ffmpeg writer: raw frames piped in, H.264 + AAC out in one pass, at the requested rate and length."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from support.animation_http import ffprobe

from comps.animation.encode import EncodeError, VideoEncoder, ffmpeg_command, fps_arg

SR = 16_000


def gradient_frames(n: int, height: int, width: int) -> list[np.ndarray]:
    base = np.add.outer(np.arange(height), np.arange(width)).astype(np.uint8)
    return [np.stack([base + 7 * i, base, 255 - base], axis=-1).astype(np.uint8) for i in range(n)]


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("fps", "seconds", "size", "rate"),
    [(25.0, 1.0, (48, 64), "25/1"), (29.97, 1.2, (48, 64), "30000/1001"), (12.5, 0.8, (47, 63), "25/2")],
)
def test_h264_aac_at_the_requested_rate_and_length(
    tmp_path: Path, fps: float, seconds: float, size: tuple[int, int], rate: str
) -> None:
    height, width = size
    n = int(seconds * fps + 0.5)
    out = tmp_path / "v.mp4"
    with VideoEncoder(
        out_path=out, width=width, height=height, fps=fps, audio=tone(seconds), sample_rate=SR, workdir=tmp_path / "w"
    ) as encoder:
        for frame in gradient_frames(n, height, width):
            encoder.write(frame)
    assert encoder.frames == n
    assert (tmp_path / "w" / "audio.wav").is_file()
    info = ffprobe(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["pix_fmt"], audio["codec_name"]) == ("h264", "yuv420p", "aac")
    assert video["r_frame_rate"] == rate
    assert int(video["nb_read_frames"]) == n
    assert (video["width"], video["height"]) == (width + width % 2, height + height % 2)  # odd sides padded
    assert abs(float(video["duration"]) - seconds) <= 1 / fps
    assert abs(float(info["format"]["duration"]) - seconds) <= 1 / fps


def test_faststart_puts_the_index_first(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    with VideoEncoder(
        out_path=out, width=32, height=32, fps=25, audio=tone(0.4), sample_rate=SR, workdir=tmp_path
    ) as e:
        for frame in gradient_frames(10, 32, 32):
            e.write(frame)
    head = out.read_bytes()[:4096]
    assert 0 <= head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head


def test_frames_survive_encoding(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    frames = gradient_frames(5, 64, 64)
    with VideoEncoder(
        out_path=out, width=64, height=64, fps=25, audio=tone(0.2), sample_rate=SR, workdir=tmp_path
    ) as e:
        for frame in frames:
            e.write(frame)
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    decoded = np.frombuffer(raw, np.uint8).reshape(-1, 64, 64, 3)
    assert decoded.shape[0] == 5
    assert np.abs(decoded[3].astype(int) - frames[3]).mean() < 6  # lossy, but the same picture


def test_wrong_frame_size_is_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="frame must be"),
        VideoEncoder(
            out_path=tmp_path / "v.mp4", width=32, height=32, fps=25, audio=tone(0.2), sample_rate=SR, workdir=tmp_path
        ) as e,
    ):
        e.write(np.zeros((16, 32, 3), np.uint8))
    assert not (tmp_path / "v.mp4").exists()  # an aborted encode leaves no partial file
    assert e._proc is not None and e._proc.stdin is not None
    assert e._proc.stdin.closed and e._log.closed  # and no pipe or file left open in a long-running service


def test_missing_ffmpeg_is_a_clear_error(tmp_path: Path) -> None:
    encoder = VideoEncoder(
        out_path=tmp_path / "v.mp4",
        width=32,
        height=32,
        fps=25,
        audio=tone(0.2),
        sample_rate=SR,
        workdir=tmp_path,
        ffmpeg=str(tmp_path / "no-ffmpeg"),
    )
    with pytest.raises(EncodeError, match="cannot start ffmpeg"), encoder:
        pass


def test_ffmpeg_failure_carries_its_log(tmp_path: Path) -> None:
    out = tmp_path / "missing-dir" / "v.mp4"  # ffmpeg cannot create the output
    with (
        pytest.raises(EncodeError, match="missing-dir"),
        VideoEncoder(out_path=out, width=32, height=32, fps=25, audio=tone(0.2), sample_rate=SR, workdir=tmp_path) as e,
    ):
        for frame in gradient_frames(3, 32, 32):
            e.write(frame)


def test_fps_and_command() -> None:
    assert fps_arg(25) == "25/1"
    assert fps_arg(29.97) == "30000/1001"
    assert fps_arg(23.976) == "24000/1001"
    with pytest.raises(ValueError):
        fps_arg(0)
    cmd = ffmpeg_command(ffmpeg="ffmpeg", width=64, height=48, fps=25, audio=Path("a.wav"), out_path=Path("o.mp4"))
    joined = " ".join(cmd)
    for part in ("-c:v libx264", "-pix_fmt yuv420p", "-c:a aac", "-movflags +faststart", "-i pipe:0", "-i a.wav"):
        assert part in joined
    assert "pad=" not in joined
