"""The one interface between the animation service and an inference mode, its capabilities, and the shared networks.

A mode says what it can do as data (`Capabilities`); the service checks a request against that
data before any work and calls the one `render` method. The networks several modes use are loaded
once, for the enabled modes, by `networks.load_networks` and handed to every factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from comps.animation.analysis import AvatarAnalyzer
from comps.animation.render import RenderResult, Wav2LipRenderer
from comps.animation.session import LipSyncSession
from comps.animation.settings import AnimationSettings
from comps.animation.track import FaceTrack
from comps.core.contracts import SadTalkerOptions

if TYPE_CHECKING:
    from comps.animation.enhance import FaceEnhancer
    from comps.animation.sadtalker.pipeline import SadTalkerPipeline

T = TypeVar("T")


@dataclass(frozen=True)
class Capabilities:
    """What a loaded mode can do; the service and the avatar registry act on it, never on the mode's type."""

    fixed_fps: float | None = None
    """The only frame rate the mode renders at (a request naming another gets 400 `fps_fixed`); None: any."""
    options: frozenset[str] = frozenset()
    """The `SadTalkerOptions` names it takes; a request setting any other gets 400 `option_not_supported`."""
    min_audio_frames: int = 0
    """Audio shorter than this many video frames gets 400 `audio_too_short` (Wav2Lip pads any clip to one)."""
    analyzer: AvatarAnalyzer | None = None
    """Per-avatar work the registry does at registration and stores with the face track; None: none needed."""
    finish: Callable[[], object] | None = None
    """Blocking, once at shutdown (FP8 MEASURE statistics); modes sharing a network share the same hook."""
    session: Callable[[FaceTrack, float], LipSyncSession] | None = None
    """Opens a streaming lip-sync session on a track at an fps (`WS /v1/animation/stream`); None: clips only."""


class AnimationBackend(Protocol):
    """A loaded inference mode that turns speech on an avatar into an MP4."""

    @property
    def capabilities(self) -> Capabilities:
        """What this mode takes and needs; constant for the mode's life."""
        ...

    def render(
        self,
        track: FaceTrack,
        audio: npt.NDArray[np.float32],
        *,
        out_path: Path,
        fps: float,
        workdir: Path,
        options: SadTalkerOptions,
    ) -> RenderResult:
        """Render `audio` (16 kHz mono float32) on the avatar's track into `out_path`; blocking.

        `fps` is `capabilities.fixed_fps` for a fixed-rate mode. `options` sets only names in
        `capabilities.options` (the service checks; None fields mean the server's defaults).
        `workdir` is the request's own temp folder (the caller removes it). A track without the
        mode's analysis (one the registry did not see) is analysed first.
        """
        ...


@dataclass(frozen=True)
class SharedNetworks:
    """The networks the enabled modes use, each loaded once; None or absent: no enabled mode needs it."""

    wav2lip: Mapping[str, Wav2LipRenderer]
    """Wav2Lip mode name -> its renderer; modes on the same checkpoint file share one (and its GFPGAN)."""
    gfpgan: FaceEnhancer | None = None
    """GFPGAN, for `wav2lip+gfpgan` and `sadtalker+gfpgan`."""
    sadtalker: SadTalkerPipeline | None = None
    """The SadTalker networks, for `sadtalker` and `sadtalker+gfpgan`."""


def required(value: T | None, what: str) -> T:
    """`value`, which the loader built for the enabled modes.

    Raises:
        RuntimeError: it was not built (a mode missing from `networks`' tables: a programming error).
    """
    if value is None:
        raise RuntimeError(f"{what} was not loaded: add the mode needing it to comps.animation.backends.networks")
    return value


BackendFactory = Callable[[AnimationSettings, SharedNetworks], AnimationBackend]
"""Builds a mode from the settings and the shared networks (cheap: the networks are already loaded)."""
