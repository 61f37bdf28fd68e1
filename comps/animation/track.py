"""The cached face track of an avatar: frames, padded face boxes, landmarks, GFPGAN alignment, mode analyses.

Computed once when an avatar is registered (see `avatars`), then shared read-only by every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]  # (H, W, 3) BGR, as OpenCV reads it
# What a mode computes once per avatar (see `analysis.AvatarAnalyzer`): named arrays.
Analysis = Mapping[str, npt.NDArray[np.generic]]


@dataclass(frozen=True)
class FaceTrack:
    """Everything a render needs about an avatar, detected once.

    Attributes:
        frames: the avatar's frames (one for an image), BGR uint8, all the same size.
        boxes: (n_frames, 4) int array of padded face boxes `y1, y2, x1, x2` in pixels
            (upstream Wav2Lip pads top 0, bottom 10, left 0, right 0, clipped to the frame).
        fps: a video avatar's own frame rate; None for an image.
        align: (n_frames, 2, 3) float32 affine matrices mapping each frame onto GFPGAN's 512×512
            face template (from five landmarks), or None when not computed.
        landmarks: (n_frames, 5, 2) float32 face points (eye centres, nose tip, mouth corners; x, y
            in pixels), smoothed like the boxes, or None when not computed.
        analysis: per-avatar results of the loaded modes by analyzer name (SadTalker's 3DMM
            coefficients), computed at registration.
    """

    frames: tuple[Frame, ...]
    boxes: npt.NDArray[np.int64]
    fps: float | None = None
    align: npt.NDArray[np.float32] | None = None
    landmarks: npt.NDArray[np.float32] | None = None
    analysis: Mapping[str, Analysis] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the shapes agree; a broken track must fail at registration, not mid-render."""
        if not self.frames:
            raise ValueError("a face track needs at least one frame")
        if self.boxes.shape != (len(self.frames), 4):
            raise ValueError(f"boxes must be ({len(self.frames)}, 4), got {self.boxes.shape}")
        if self.align is not None and self.align.shape != (len(self.frames), 2, 3):
            raise ValueError(f"align must be ({len(self.frames)}, 2, 3), got {self.align.shape}")
        if self.landmarks is not None and self.landmarks.shape != (len(self.frames), 5, 2):
            raise ValueError(f"landmarks must be ({len(self.frames)}, 5, 2), got {self.landmarks.shape}")

    @property
    def size(self) -> tuple[int, int]:
        """Frame height and width in pixels."""
        height, width = self.frames[0].shape[:2]
        return int(height), int(width)

    def index(self, frame_number: int) -> int:
        """The avatar frame used for output frame `frame_number`: a video avatar ping-pongs, an image repeats."""
        n = len(self.frames)
        if n == 1:
            return 0
        period = 2 * n - 2
        position = frame_number % period
        return position if position < n else period - position
