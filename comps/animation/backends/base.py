"""The narrow interface between the animation service and an inference mode (Wav2Lip, Wav2Lip+GFPGAN, ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from comps.animation.render import RenderResult
from comps.animation.settings import AnimationSettings
from comps.animation.track import FaceTrack
from comps.core.device import Device

T = TypeVar("T")


class AnimationBackend(Protocol):
    """A loaded inference mode that turns speech on an avatar into an MP4."""

    def render(
        self, track: FaceTrack, audio: npt.NDArray[np.float32], *, out_path: Path, fps: float, workdir: Path
    ) -> RenderResult:
        """Render `audio` (16 kHz mono float32) on the avatar's track into `out_path`; blocking.

        `workdir` is the request's own temp folder (the caller removes it).
        """
        ...


@runtime_checkable
class FinishingBackend(Protocol):
    """A mode with work to do when the service stops (writing FP8 MEASURE statistics)."""

    def finish(self) -> None:
        """Blocking; called once at shutdown."""
        ...


@dataclass
class LoadContext:
    """What a mode's factory gets: the settings, the device, and a cache so modes share loaded weights.

    `wav2lip_gan` and `wav2lip+gfpgan` use the same Wav2Lip-GAN network: the first factory loads
    it under its file's path, the second finds it there.
    """

    settings: AnimationSettings
    device: Device
    _loaded: dict[str, object] = field(default_factory=dict)

    def shared(self, key: str, build: Callable[[], T]) -> T:
        """The object cached under `key`, built by `build()` the first time."""
        if key not in self._loaded:
            self._loaded[key] = build()
        return self._loaded[key]  # type: ignore[return-value]


BackendFactory = Callable[[LoadContext], AnimationBackend]
