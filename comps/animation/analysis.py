"""Per-avatar work a mode does once, at registration, and that the avatar registry persists with the face track.

SadTalker needs the avatar's 3DMM coefficients (a ResNet-50 pass on the aligned face). A mode that
needs such data declares an `AvatarAnalyzer` in its `Capabilities.analyzer`; the registry runs
every loaded mode's analyzer when an avatar is registered, stores the result next to `track.npz`
as `analysis-<name>.npz` (with the analyzer's `version`), and attaches it to the track
(`FaceTrack.analysis[name]`). An avatar registered before the mode was enabled, or analysed with
other weights (another `version`), is analysed again on first load and the file rewritten.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from comps.animation.track import Analysis, FaceTrack

VERSION_KEY = "__version__"


class AvatarAnalyzer(Protocol):
    """A mode's per-avatar computation; blocking."""

    name: str  # the key in FaceTrack.analysis and the file name: a short lowercase word

    @property
    def version(self) -> str:
        """Changes whenever `analyze` would give another result (weights, size, algorithm)."""
        ...

    def analyze(self, track: FaceTrack) -> Analysis:
        """The avatar's analysis from its track (frames, boxes, landmarks).

        Raises:
            ValueError: the avatar's face cannot be used by this mode.
        """
        ...


def analysis_path(folder: Path, name: str) -> Path:
    """Where an avatar folder keeps analyzer `name`'s result."""
    return folder / f"analysis-{name}.npz"


def save_analysis(path: Path, analysis: Analysis, version: str) -> None:
    """Write atomically (a reader never sees half a file), the version inside."""
    if VERSION_KEY in analysis:
        raise ValueError(f"{VERSION_KEY} is reserved")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    try:
        arrays: dict[str, Any] = {VERSION_KEY: np.array(version), **analysis}
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_analysis(path: Path, version: str) -> Analysis | None:
    """The stored analysis when the file exists, is readable and has this `version`; else None."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored[VERSION_KEY]) != version:
                return None
            return {key: stored[key] for key in stored.files if key != VERSION_KEY}
    except (OSError, KeyError, ValueError):
        return None
