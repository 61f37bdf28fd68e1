"""Raw frames out of a live render: each frame as one I420 message, nothing encoded, nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import cv2
import numpy as np
import numpy.typing as npt

from comps.animation.live import OpenOutput
from comps.animation.track import Frame

CONTENT_TYPE = "video/x-raw;format=I420"


def even_size(width: int, height: int) -> tuple[int, int]:
    """The I420 size of a `width` x `height` frame: 4:2:0 halves both sides, so an odd one loses its last pixel."""
    return width - width % 2, height - height % 2


class RawFrames:
    """A live render's output (`LiveOutput`) as raw frames: each BGR frame goes to `sink` as one I420 `bytes`.

    I420 is planar YUV 4:2:0 as `cv2.COLOR_BGR2YUV_I420` makes it: the Y plane (height rows of width
    bytes), then U, then V (each height/2 rows of width/2 bytes), so a frame is width * height * 3 / 2
    bytes. BT.601 limited ("TV") range, Y in 16..235, what encoders take as yuv420p; each U and V value
    is the top-left pixel's of its 2x2 block (OpenCV does not average them). The speech is not
    written: the caller sent it and plays it itself.
    """

    def __init__(self, *, width: int, height: int, sink: Callable[[bytes], None]) -> None:
        """Emit frames of `width` x `height` (both even; a larger frame loses its extra last row/column)."""
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"I420 frames need positive even sides, got {width}x{height}")
        self.width, self.height = width, height
        self.frames = 0
        self._sink = sink

    @property
    def frame_bytes(self) -> int:
        """Bytes in one frame."""
        return self.width * self.height * 3 // 2

    def write_audio(self, samples: npt.NDArray[np.float32]) -> None:
        """Dropped: raw frames carry no sound."""

    def write_frame(self, frame: Frame) -> None:
        """Convert the next frame (BGR uint8, at least `height` x `width`) and emit it at once."""
        height, width, channels = frame.shape if frame.ndim == 3 else (0, 0, 0)
        if height < self.height or width < self.width or channels != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be BGR uint8 of at least {self.height}x{self.width}, got {frame.shape}")
        planes = cv2.cvtColor(frame[: self.height, : self.width], cv2.COLOR_BGR2YUV_I420)  # (height * 3/2, width)
        self._sink(planes.tobytes())
        self.frames += 1

    def flush(self) -> None:
        """Nothing waits: `write_frame` emitted each frame already."""

    def close(self) -> None:
        """Nothing to finish."""


def raw_frames(*, width: int, height: int) -> OpenOutput:
    """A live render's output (`LiveRender(output=...)`): `RawFrames` of this even size on the render's `emit`."""
    return lambda emit: nullcontext(RawFrames(width=width, height=height, sink=emit))
