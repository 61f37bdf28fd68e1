"""The output store: rendered videos addressed by id in one folder, the oldest removed beyond a retention count."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from pathlib import Path

from comps.core.errors import InvalidRequest, NotFound

logger = logging.getLogger(__name__)

VIDEO_ID = re.compile(r"^[0-9a-f]{32}$")
SUFFIX = ".mp4"
PARTIAL = ".partial.mp4"  # ffmpeg picks the container from the extension, so a partial file still ends in .mp4
STALE_S = 600.0  # a partial file not written to for this long is a crash's leftover


class OutputStore:
    """Videos at `<root>/<id>.mp4`; ids are made here, never taken from a request's path or body."""

    def __init__(self, *, root: Path, retention: int) -> None:
        """Open (and create) the folder, removing partial files a crash left behind.

        Only stale ones: on a store several replicas share, a partial file written to recently is
        another replica's render in progress (a render writes to its file every fraction of a second).
        """
        if retention < 1:
            raise ValueError(f"retention must be >= 1, got {retention}")
        self.root = root
        self.retention = retention
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - STALE_S
        for stale in root.glob(f"*{PARTIAL}"):
            with contextlib.suppress(OSError):
                if stale.stat().st_mtime < cutoff:
                    stale.unlink()

    def reserve(self) -> tuple[str, Path]:
        """A new id and the partial path to render into (made final by `commit`)."""
        video_id = uuid.uuid4().hex
        return video_id, self.root / f"{video_id}{PARTIAL}"

    def final_path(self, video_id: str) -> Path:
        """Where `commit` puts the video."""
        return self.root / f"{video_id}{SUFFIX}"

    def commit(self, video_id: str) -> Path:
        """Make a rendered video visible under its id, then prune beyond the retention count."""
        final = self.final_path(video_id)
        (self.root / f"{video_id}{PARTIAL}").replace(final)
        self._prune()
        return final

    def discard(self, video_id: str) -> None:
        """Remove a partial render (after a failure)."""
        (self.root / f"{video_id}{PARTIAL}").unlink(missing_ok=True)

    def partial_path(self, video_id: str) -> Path | None:
        """The file of a video being rendered (by any replica on this store), or None."""
        if not VIDEO_ID.fullmatch(video_id):
            return None
        path = self.root / f"{video_id}{PARTIAL}"
        return path if path.is_file() else None

    def path(self, video_id: str) -> Path:
        """The file of a finished video.

        Raises:
            InvalidRequest: not a video id. NotFound: no such video (never made, or pruned).
        """
        if not VIDEO_ID.fullmatch(video_id):
            raise InvalidRequest(f"{video_id[:80]!r} is not a video id", param="id", code="invalid_video_id")
        path = self.root / f"{video_id}{SUFFIX}"
        if not path.is_file():
            raise NotFound(f"video {video_id} does not exist (or was removed by retention)", param="id")
        return path

    def ids(self) -> list[str]:
        """Finished videos, oldest first."""
        return [p.name.removesuffix(SUFFIX) for p in self._finished()]

    def _finished(self) -> list[Path]:
        found = []
        for path in self.root.glob(f"*{SUFFIX}"):
            if path.name.endswith(PARTIAL) or not VIDEO_ID.fullmatch(path.name.removesuffix(SUFFIX)):
                continue
            try:
                found.append((path.stat().st_mtime_ns, path))
            except FileNotFoundError:  # pruned by another thread meanwhile
                continue
        return [p for _, p in sorted(found)]

    def _prune(self) -> None:
        with self._lock:
            finished = self._finished()
            for old in finished[: max(0, len(finished) - self.retention)]:
                old.unlink(missing_ok=True)
                logger.info("retention: removed %s", old.name)
