from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ui.video import join_segments


def _segment(path: Path, seconds: float, color: int) -> Path:
    frames = np.full((int(seconds * 10), 64, 64, 3), color, dtype=np.uint8)
    cmd = [
        "ffmpeg", "-y", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x64", "-r", "10", "-i", "-",
        "-f", "lavfi", "-t", str(seconds), "-i", "sine=frequency=440:sample_rate=16000",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run(cmd, input=frames.tobytes(), check=True)
    return path


def _probe(path: Path) -> dict[str, object]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def test_segments_join_into_one_playable_video(tmp_path: Path) -> None:
    parts = [_segment(tmp_path / f"s{i}.mp4", s, c) for i, (s, c) in enumerate([(1.0, 0), (1.5, 128), (0.8, 255)])]
    joined = join_segments(parts, tmp_path / "answer.mp4")
    info = _probe(joined)
    kinds = sorted(s["codec_type"] for s in info["streams"])  # type: ignore[index, union-attr]
    assert kinds == ["audio", "video"]
    duration = float(info["format"]["duration"])  # type: ignore[index, call-overload]
    assert duration == pytest.approx(3.3, abs=0.15)
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(joined), "-f", "null", "-"], capture_output=True, text=True, check=False
    )
    assert decoded.returncode == 0 and decoded.stderr == ""


def test_one_segment_is_copied(tmp_path: Path) -> None:
    part = _segment(tmp_path / "s.mp4", 1.0, 50)
    assert join_segments([part], tmp_path / "a.mp4").read_bytes() == part.read_bytes()


def test_no_segment_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no segments"):
        join_segments([], tmp_path / "a.mp4")
