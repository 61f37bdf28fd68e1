"""Avatar media for tests: the astronaut as PNG bytes and as a short H.264 clip with a slow pan."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt


def astronaut(shared_dir: Path) -> npt.NDArray[np.uint8]:
    """The astronaut avatar, BGR uint8 (512x512)."""
    image = cv2.imread(str(shared_dir / "assets" / "avatar_astronaut.png"))
    assert image is not None, "the shared astronaut asset is missing"
    return np.asarray(image, np.uint8)


def panned_frames(image: npt.NDArray[np.uint8], count: int, *, step_px: float = 2.0) -> list[npt.NDArray[np.uint8]]:
    """`count` frames of `image` shifted right by `step_px` more pixels each (edges replicated)."""
    height, width = image.shape[:2]
    frames = []
    for i in range(count):
        shift = np.array([[1, 0, step_px * i], [0, 1, 0]], np.float32)
        frames.append(np.asarray(cv2.warpAffine(image, shift, (width, height), borderMode=cv2.BORDER_REPLICATE)))
    return frames


def encode_clip(frames: list[npt.NDArray[np.uint8]], fps: int, path: Path) -> bytes:
    """Encode BGR frames as an H.264 MP4 at `path` with ffmpeg; returns the file's bytes."""
    height, width = frames[0].shape[:2]
    command = [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "-",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        str(path),
    ]
    subprocess.run(command, input=b"".join(f.tobytes() for f in frames), check=True)
    return path.read_bytes()
