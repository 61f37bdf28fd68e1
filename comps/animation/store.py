"""The output store: rendered videos by id in one folder, removed by age, count and total size.

A video is rendered into `<id>.partial.mp4` and renamed to `<id>.mp4` when complete, so a reader never
sees half a video under its final name. A live render (a fragmented MP4 that readers follow while it
grows) holds an exclusive `flock` on its partial file until it is committed or discarded: that lock,
not the file's age, tells every replica on a shared store that the file is still being written, so a
partial file nobody holds (a crash's leftover, or a whole-clip render that is not playable before its
end) is never served. A crashed process's locks are released by the kernel (on NFS, when its lease ends).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from comps.core.errors import InvalidRequest, NotFound

logger = logging.getLogger(__name__)

VIDEO_ID = re.compile(r"^[0-9a-f]{32}$")
SUFFIX = ".mp4"
PARTIAL = ".partial.mp4"  # ffmpeg picks the container from the extension, so a partial file still ends in .mp4
STALE_S = 600.0  # a partial file not written to for this long is a crash's leftover (removed at start)
# A video served this recently (by any replica: `open` stamps its access time) may still be playing: no prune
# removes it. A player fetches a video in one long request or in Range requests spread over its playback.
IN_USE_S = 300.0


def being_written(path: Path) -> bool:
    """Whether a live render (in any process on this store) holds `path`'s lock, i.e. is writing it now.

    This process asks it about other processes' files only (its own live renders are known without a
    file system call): on NFS, `flock` is emulated with POSIX locks, which one process does not see as
    conflicting with itself.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released by the close below
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks: nobody can hold one
        return False
    finally:
        os.close(fd)
    return False


@dataclass(frozen=True)
class _Video:
    """A finished video's file as `prune` sees it."""

    id: str
    path: Path
    size: int
    mtime_ns: int  # when it was completed (a rename keeps it)
    atime_ns: int  # when it was last served, where later than mtime


class OutputStore:
    """Videos at `<root>/<id>.mp4`; ids are made here, never taken from a request's path or body."""

    def __init__(
        self,
        *,
        root: Path,
        retention: int,
        ttl_s: float = 0.0,
        max_bytes: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (and create) the folder, removing partial files a crash left behind.

        `ttl_s` (seconds since a video was completed) and `max_bytes` (all files, partial ones included)
        are off at 0. Only stale partial files are removed here: on a store several replicas share, one
        written to recently is another replica's render in progress.
        """
        if retention < 1:
            raise ValueError(f"retention must be >= 1, got {retention}")
        if ttl_s < 0 or max_bytes < 0:
            raise ValueError(f"ttl_s and max_bytes must be >= 0 (0: off), got {ttl_s} and {max_bytes}")
        self.root = root
        self.retention = retention
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self.clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, BinaryIO] = {}  # this process's live renders: their locked partial files
        root.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - STALE_S
        for stale in root.glob(f"*{PARTIAL}"):
            with contextlib.suppress(OSError):
                if stale.stat().st_mtime < cutoff and not being_written(stale):
                    stale.unlink()

    def reserve(self) -> tuple[str, Path]:
        """A new id and the partial path to render a whole clip into (made final by `commit`)."""
        video_id = uuid.uuid4().hex
        return video_id, self._partial(video_id)

    def reserve_live(self) -> tuple[str, Path]:
        """A new id and its partial file, created now and locked until `commit` or `discard`.

        Readers on any replica follow the file while the lock is held (`partial_path`).
        """
        video_id = uuid.uuid4().hex
        path = self._partial(video_id)
        handle = path.open("xb")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
        except BaseException:
            handle.close()
            path.unlink(missing_ok=True)
            raise
        with self._lock:
            self._held[video_id] = handle
        return video_id, path

    def final_path(self, video_id: str) -> Path:
        """Where `commit` puts the video."""
        return self.root / f"{video_id}{SUFFIX}"

    def commit(self, video_id: str) -> Path:
        """Make a rendered video visible under its id (one rename), then prune; the new video is never pruned here."""
        final = self.final_path(video_id)
        self._partial(video_id).replace(final)
        self._release(video_id)  # after the rename: a follower sees the name gone before the lock
        self.prune(keep={video_id})
        return final

    def discard(self, video_id: str) -> None:
        """Remove a partial render (after a failure, or an abandoned stream)."""
        self._partial(video_id).unlink(missing_ok=True)
        self._release(video_id)

    def partial_path(self, video_id: str) -> Path | None:
        """The partial file of a video a live render (of any replica on this store) is writing now, or None.

        A partial file nobody holds is a crash's leftover or a whole-clip render, unplayable until it
        is committed: never served.
        """
        if not VIDEO_ID.fullmatch(video_id):
            return None
        path = self._partial(video_id)
        return path if being_written(path) else None

    def path(self, video_id: str) -> Path:
        """The file of a finished video.

        Raises:
            InvalidRequest: not a video id. NotFound: no such video (never made, or removed).
        """
        path = self.final_path(_checked(video_id))
        if not path.is_file():
            raise NotFound(f"video {video_id} does not exist (or was removed by retention)", param="id")
        return path

    def open(self, video_id: str) -> BinaryIO:
        """A finished video opened for reading, marked as being served (its access time, see `IN_USE_S`).

        Once open, removing the file (a prune, a DELETE, another replica) no longer cuts the reader short.

        Raises:
            InvalidRequest: not a video id. NotFound: no such video.
        """
        path = self.path(video_id)
        try:
            handle = path.open("rb")
        except FileNotFoundError:  # removed since `path` looked
            raise NotFound(f"video {video_id} does not exist (or was removed by retention)", param="id") from None
        with contextlib.suppress(OSError):  # a read-only store: the prune's in-use guess is all that is lost
            os.utime(handle.fileno(), ns=(time.time_ns(), os.fstat(handle.fileno()).st_mtime_ns))
        return handle

    def delete(self, video_id: str) -> None:
        """Remove a finished video.

        Raises:
            InvalidRequest: not a video id; 409 `video_in_progress` while a live render writes it.
            NotFound: no such video.
        """
        final = self.final_path(_checked(video_id))
        if video_id in self._held or being_written(self._partial(video_id)):
            raise InvalidRequest(
                f"video {video_id} is still being rendered; delete it once it is complete",
                param="id",
                code="video_in_progress",
                status=409,
            )
        try:
            final.unlink()
        except FileNotFoundError:
            raise NotFound(f"video {video_id} does not exist (or was removed by retention)", param="id") from None
        logger.info("deleted video %s", video_id)

    def ids(self) -> list[str]:
        """Finished videos, oldest first."""
        return [video.id for video in self._finished()]

    def prune(self, *, keep: Collection[str] = ()) -> list[str]:
        """Remove expired videos, then the oldest beyond the retention count, then beyond the size cap.

        Never removed: partial files (renders in progress), the ids in `keep`, and videos served in the
        last `IN_USE_S`. Safe against other replicas pruning the same folder. Returns the removed ids.
        """
        with self._lock:
            now_ns = int(self.clock() * 1e9)
            remaining = {video.id: video for video in self._finished()}  # oldest first
            removable = [v for v in remaining.values() if v.id not in keep and not _in_use(v, now_ns)]
            doomed: list[_Video] = []

            def drop(video: _Video) -> None:
                if remaining.pop(video.id, None) is not None:
                    doomed.append(video)

            if self.ttl_s:
                for video in removable:
                    if now_ns - video.mtime_ns > self.ttl_s * 1e9:
                        drop(video)
            for video in removable:
                if len(remaining) <= self.retention:
                    break
                drop(video)
            if self.max_bytes:
                total = self._partial_bytes() + sum(v.size for v in remaining.values())
                for video in removable:
                    if total <= self.max_bytes:
                        break
                    if video.id in remaining:
                        drop(video)
                        total -= video.size
                if total > self.max_bytes:
                    logger.warning(
                        "the video store holds %d bytes, over ANIMATION_STORE_MAX_BYTES=%d: what is left is "
                        "being rendered, just made or being served",
                        total,
                        self.max_bytes,
                    )
            for video in doomed:
                video.path.unlink(missing_ok=True)  # another replica may have removed it first
                logger.info("store: removed video %s", video.id)
            return [video.id for video in doomed]

    def _partial(self, video_id: str) -> Path:
        return self.root / f"{video_id}{PARTIAL}"

    def _release(self, video_id: str) -> None:
        with self._lock:
            handle = self._held.pop(video_id, None)
        if handle is not None:
            handle.close()  # closing releases the flock

    def _finished(self) -> list[_Video]:
        found = []
        for path in self.root.glob(f"*{SUFFIX}"):
            video_id = path.name.removesuffix(SUFFIX)
            if path.name.endswith(PARTIAL) or not VIDEO_ID.fullmatch(video_id):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed by another thread or replica meanwhile
                continue
            found.append(_Video(video_id, path, stat.st_size, stat.st_mtime_ns, stat.st_atime_ns))
        return sorted(found, key=lambda video: (video.mtime_ns, video.id))

    def _partial_bytes(self) -> int:
        total = 0
        for path in self.root.glob(f"*{PARTIAL}"):
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total


def _checked(video_id: str) -> str:
    if not VIDEO_ID.fullmatch(video_id):
        raise InvalidRequest(f"{video_id[:80]!r} is not a video id", param="id", code="invalid_video_id")
    return video_id


def _in_use(video: _Video, now_ns: int) -> bool:
    """Served (read after it was completed) within the last `IN_USE_S`."""
    return video.atime_ns > video.mtime_ns and now_ns - video.atime_ns < IN_USE_S * 1e9
