"""Per-request render options beyond OPEA's: SadTalker's `still`, `blink`, `expression_scale`, `pose_style`, etc.

A mode that takes them implements `OptionsBackend` on top of `AnimationBackend`; the service hands
options only to such a mode and refuses them (400) for the others, so a request never has an
option silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from comps.animation.render import RenderResult
from comps.animation.track import FaceTrack


@dataclass(frozen=True)
class RenderOptions:
    """Options a request may set; None means the server's default for the mode."""

    still: bool | None = None
    blink: bool | None = None
    expression_scale: float | None = None
    pose_style: int | None = None
    seed: int | None = None
    # Head angles in degrees replacing the predicted ones; several values are visited in turn over the clip.
    input_yaw: tuple[float, ...] | None = None
    input_pitch: tuple[float, ...] | None = None
    input_roll: tuple[float, ...] | None = None

    def given(self) -> list[str]:
        """Names of the options the request set."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@runtime_checkable
class OptionsBackend(Protocol):
    """A mode with a fixed frame rate, per-avatar state and per-request options (SadTalker)."""

    fps: float  # the only frame rate this mode renders at

    def render_avatar(
        self,
        avatar_id: str,
        track: FaceTrack,
        audio: npt.NDArray[np.float32],
        *,
        out_path: Path,
        workdir: Path,
        options: RenderOptions,
    ) -> RenderResult:
        """Render `audio` (16 kHz mono float32) on the avatar into `out_path`; blocking."""
        ...
