"""The avatar registry: uploads detected once, persisted under the avatar dir, face tracks cached in memory.

On disk, one folder per avatar: `source.png` or `source.mp4` (the decoded frames re-encoded, never
the uploaded bytes: see `media.encode_media`), `track.npz` (padded boxes, landmarks, GFPGAN affines,
fps), `meta.json`, and one `analysis-<name>.npz` per loaded mode that analyses avatars (SadTalker's
coefficients, see `analysis`). A folder is written under a temporary name and renamed whole. Loading
an avatar decodes its stored copy and reuses the stored track and analyses, so a request never
re-detects or re-analyses a face.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from comps.animation.analysis import AvatarAnalyzer, analysis_path, load_analysis, save_analysis
from comps.animation.detect import FaceDetector, NoFaceError, build_track
from comps.animation.media import MAX_PIXELS, AvatarKind, Media, decode_media, encode_media
from comps.animation.track import FaceTrack
from comps.core.errors import InvalidRequest, NotFound, PayloadTooLarge, Unprocessable

logger = logging.getLogger(__name__)

DEFAULT_ID = "default"
AVATAR_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PREVIEW_SIDE = 320  # longer side of the gallery preview PNG, in pixels
MAX_NAME = 100
# A staging folder untouched this long is a crash's leftover, not a registration in progress.
STALE_S = 3600.0
SOURCE = {"image": "source.png", "video": "source.mp4"}  # the stored frames, by kind
LEGACY_SOURCE = "source"  # the uploaded bytes, as earlier versions kept them (re-encoded at first load)


@dataclass(frozen=True)
class AvatarInfo:
    """What the API tells about an avatar."""

    id: str
    name: str
    kind: AvatarKind
    frames: int
    width: int
    height: int
    fps: float | None
    created: float  # Unix time


@dataclass(frozen=True)
class Avatar:
    """A registered avatar and its cached face track."""

    info: AvatarInfo
    track: FaceTrack


def check_id(avatar_id: str, *, param: str = "avatar") -> str:
    """Refuse ids that are not lowercase letters, digits, `_` and `-` (so an id never names a path)."""
    if not AVATAR_ID.fullmatch(avatar_id):
        raise InvalidRequest(
            f"{param} must be an avatar id ({AVATAR_ID.pattern}), got {avatar_id[:80]!r}",
            param=param,
            code="invalid_avatar_id",
        )
    return avatar_id


class AvatarRegistry:
    """Registered avatars; blocking methods (call them from a worker thread)."""

    def __init__(
        self,
        *,
        root: Path,
        detector: FaceDetector,
        max_frames: int,
        max_side: int,
        cache_size: int,
        max_bytes: int | None = None,
        max_pixels: int = MAX_PIXELS,
        analyzers: Sequence[AvatarAnalyzer] = (),
    ) -> None:
        """Open (and create) the avatar folder and read every avatar's metadata (not its frames).

        Uploads over `max_bytes` (None: any size) or declaring more than `max_pixels` per frame are
        refused. `analyzers` (one per name) run on every avatar at registration; see `analysis`.
        """
        self.root = root
        self.detector = detector
        self.analyzers = {a.name: a for a in analyzers}
        self.max_frames = max_frames
        self.max_side = max_side
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.cache_size = cache_size
        self._lock = threading.Lock()
        self._tracks: OrderedDict[str, FaceTrack] = OrderedDict()  # least recently used first
        self._default: Avatar | None = None
        root.mkdir(parents=True, exist_ok=True)
        # Half-written registrations a crash left behind; only old ones: on a store that several
        # replicas share, a recent one is another replica's registration in progress.
        cutoff = time.time() - STALE_S
        for stale in root.glob(".tmp-*"):
            with contextlib.suppress(OSError):
                if stale.stat().st_mtime < cutoff:
                    shutil.rmtree(stale, ignore_errors=True)

    def check_size(self, size: int, *, param: str = "file") -> None:
        """Refuse an upload of `size` bytes over the limit (before it is read or decoded).

        Raises:
            PayloadTooLarge: over `max_bytes`.
        """
        if self.max_bytes is not None and size > self.max_bytes:
            raise PayloadTooLarge(
                f"{param} is {size} bytes; the limit is {self.max_bytes} bytes (ANIMATION_AVATAR_MAX_BYTES)",
                param=param,
                code="avatar_file_too_large",
            )

    def _decode(self, data: bytes, *, param: str) -> Media:
        return decode_media(
            data, max_frames=self.max_frames, max_side=self.max_side, max_pixels=self.max_pixels, param=param
        )

    def _detect(self, media: Media, *, param: str) -> FaceTrack:
        try:
            return build_track(media.frames, self.detector, fps=media.fps)
        except NoFaceError as exc:
            raise Unprocessable(f"{param}: {exc}", param=param, code="no_face") from exc

    def register(self, data: bytes, *, name: str | None) -> Avatar:
        """Decode an uploaded image or video, re-encode it, detect its face and persist it under a new id.

        The face is found in the frames decoded from the re-encoded copy, the very pixels every later
        load gets; the uploaded bytes are dropped.

        Raises:
            InvalidRequest: not an image/video, corrupt, too small. PayloadTooLarge: too many bytes or
            pixels. Unprocessable: no face in it.
        """
        self.check_size(len(data))
        suffix, stored = encode_media(self._decode(data, param="file"))
        media = self._decode(stored, param="file")  # a video's frames as its lossy copy gives them back
        track = self._detect(media, param="file")
        track = self._analyze(track, folder=None, param="file")
        avatar_id = uuid.uuid4().hex[:12]
        height, width = track.size
        info = AvatarInfo(
            id=avatar_id,
            name=(name or avatar_id)[:MAX_NAME],
            kind=media.kind,
            frames=len(track.frames),
            width=width,
            height=height,
            fps=track.fps,
            created=time.time(),
        )
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            (staging / f"source{suffix}").write_bytes(stored)
            _save_track(staging, track)
            for name, analyzer in self.analyzers.items():
                save_analysis(analysis_path(staging, name), track.analysis[name], analyzer.version)
            (staging / "meta.json").write_text(json.dumps(asdict(info)))
            staging.rename(self.root / avatar_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        with self._lock:
            self._remember(avatar_id, track)
        logger.info("registered avatar %s (%s, %d frames, %dx%d)", avatar_id, media.kind, info.frames, width, height)
        return Avatar(info=info, track=track)

    def register_default(self, path: Path) -> Avatar:
        """Register the operator's `FACE` file as `default` (in memory only, detected at each start).

        Raises:
            FileNotFoundError: the file is missing. ValueError: it is not a usable avatar.
        """
        if not path.is_file():
            raise FileNotFoundError(f"FACE/ANIMATION_FACE names {path}, which is not a file")
        try:
            media = self._decode(path.read_bytes(), param="FACE")
            track = self._detect(media, param="FACE")
        except (InvalidRequest, PayloadTooLarge, Unprocessable) as exc:
            raise ValueError(f"the default avatar {path} is not usable: {exc.message}") from exc
        try:
            track = self._analyze(track, folder=None, param="FACE")
        except Unprocessable as exc:
            raise ValueError(f"the default avatar {path} is not usable: {exc.message}") from exc
        height, width = track.size
        info = AvatarInfo(
            id=DEFAULT_ID,
            name=path.stem[:MAX_NAME],
            kind=media.kind,
            frames=len(track.frames),
            width=width,
            height=height,
            fps=track.fps,
            created=time.time(),
        )
        self._default = Avatar(info=info, track=track)
        return self._default

    @property
    def has_default(self) -> bool:
        """Whether a default avatar (`FACE`) is registered (in memory: no store access)."""
        return self._default is not None

    def list(self) -> list[AvatarInfo]:
        """Every avatar in the store (whichever replica registered it), the default first, then by registration time."""
        infos = [info for meta in self.root.glob("*/meta.json") if (info := _read_info(meta)) is not None]
        return ([self._default.info] if self._default else []) + sorted(infos, key=lambda i: i.created)

    def info(self, avatar_id: str, *, param: str = "avatar") -> AvatarInfo:
        """An avatar's metadata (cheap).

        Raises:
            InvalidRequest: a malformed id. NotFound: no such avatar.
        """
        check_id(avatar_id, param=param)
        if avatar_id == DEFAULT_ID and self._default is not None:
            return self._default.info
        found = _read_info(self.root / avatar_id / "meta.json")  # the store's, not this process's memory
        if found is None:
            raise NotFound(f"avatar {avatar_id!r} does not exist", param=param, code="avatar_not_found")
        return found

    def get(self, avatar_id: str, *, param: str = "avatar") -> Avatar:
        """An avatar with its face track, loaded from disk when not cached (no detection)."""
        info = self.info(avatar_id, param=param)
        if avatar_id == DEFAULT_ID and self._default is not None:
            return self._default
        with self._lock:
            track = self._tracks.get(avatar_id)
            if track is not None:
                self._tracks.move_to_end(avatar_id)
        if track is None:
            track = self._load(info)
            with self._lock:
                self._remember(avatar_id, track)
        return Avatar(info=info, track=track)

    def delete(self, avatar_id: str) -> None:
        """Remove an avatar and its files; the default avatar cannot be removed."""
        if avatar_id == DEFAULT_ID:
            raise InvalidRequest("the default avatar cannot be deleted", param="id", code="default_avatar")
        self.info(avatar_id, param="id")
        with self._lock:
            self._tracks.pop(avatar_id, None)
        # Renamed first, so the avatar disappears at once for every replica, never half removed.
        doomed = self.root / f".tmp-{uuid.uuid4().hex}"
        try:
            (self.root / avatar_id).rename(doomed)
        except FileNotFoundError:  # removed by another replica meanwhile
            raise NotFound(f"avatar {avatar_id!r} does not exist", param="id", code="avatar_not_found") from None
        shutil.rmtree(doomed, ignore_errors=True)

    def preview_png(self, avatar_id: str, *, full: bool = False) -> bytes:
        """The avatar's first frame as a PNG, at most `PREVIEW_SIDE` pixels on its longer side (`full`: as rendered)."""
        frame = self.get(avatar_id, param="id").track.frames[0]
        height, width = frame.shape[:2]
        scale = 1.0 if full else min(1.0, PREVIEW_SIDE / max(height, width))
        if scale < 1:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            frame = np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), np.uint8)
        ok, png = cv2.imencode(".png", frame)
        if not ok:
            raise RuntimeError("PNG encoding failed")
        return bytes(png.tobytes())

    def _remember(self, avatar_id: str, track: FaceTrack) -> None:
        """Cache a track, dropping the least recently used beyond `cache_size` (caller holds the lock)."""
        self._tracks[avatar_id] = track
        self._tracks.move_to_end(avatar_id)
        while len(self._tracks) > self.cache_size:
            self._tracks.popitem(last=False)

    def _load(self, info: AvatarInfo) -> FaceTrack:
        """Decode the stored frames and attach the stored track; re-detect if the decoding limits changed."""
        folder = self.root / info.id
        media = self._decode(self._stored_source(folder, info), param="avatar")
        with np.load(folder / "track.npz") as stored:
            boxes, align, fps = stored["boxes"], stored["align"], float(stored["fps"])
            landmarks = stored["landmarks"] if "landmarks" in stored.files else None
        height, width = media.frames[0].shape[:2]
        fits = boxes.shape[0] == len(media.frames) and (height, width) == (info.height, info.width)
        if not fits or landmarks is None:
            logger.info("avatar %s: stored track does not fit the decoded frames; detecting again", info.id)
            track = build_track(media.frames, self.detector, fps=media.fps)
            if fits:  # only the landmarks were missing (stored by an older version): store the whole track now
                _save_track(folder, track)
        else:
            track = FaceTrack(
                frames=media.frames, boxes=boxes.astype(np.int64), fps=fps or None, align=align, landmarks=landmarks
            )
        return self._analyze(track, folder=folder, param="avatar")

    def _stored_source(self, folder: Path, info: AvatarInfo) -> bytes:
        """The stored frames' file; an earlier version's uploaded bytes are re-encoded once, in place."""
        stored = folder / SOURCE[info.kind]
        try:
            return stored.read_bytes()
        except FileNotFoundError:
            legacy = folder / LEGACY_SOURCE
            if not legacy.is_file():
                raise
        logger.info("avatar %s: storing its frames re-encoded instead of the uploaded file", info.id)
        _, data = encode_media(self._decode(legacy.read_bytes(), param="avatar"))
        _write_atomic(stored, data)
        legacy.unlink(missing_ok=True)
        return data

    def _analyze(self, track: FaceTrack, *, folder: Path | None, param: str) -> FaceTrack:
        """Attach every analyzer's result: stored in `folder` with the same version, else computed (and stored).

        Raises:
            Unprocessable: an analyzer cannot use this face.
        """
        found = dict(track.analysis)
        for name, analyzer in self.analyzers.items():
            stored = load_analysis(analysis_path(folder, name), analyzer.version) if folder is not None else None
            if stored is None:
                try:
                    stored = analyzer.analyze(track)
                except ValueError as exc:
                    raise Unprocessable(f"{param}: {exc}", param=param, code="face_not_usable") from exc
                if folder is not None:
                    save_analysis(analysis_path(folder, name), stored, analyzer.version)
                logger.info("avatar analysed for %s", name)
            found[name] = stored
        return replace(track, analysis=found)


def _read_info(meta: Path) -> AvatarInfo | None:
    """An avatar's stored metadata; None when it is not there (or not readable)."""
    try:
        return AvatarInfo(**json.loads(meta.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        logger.warning("skipping unreadable avatar %s: %s", meta.parent, exc)
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `path` under a temporary name in its folder, then rename it: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_track(folder: Path, track: FaceTrack) -> None:
    """Write `track.npz` (boxes, affines, landmarks, fps) into an avatar folder, atomically."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(
                out,
                boxes=track.boxes,
                align=_required(track.align),
                landmarks=_required(track.landmarks),
                fps=np.float64(track.fps or 0),
            )
        os.replace(tmp, folder / "track.npz")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _required(value: np.ndarray | None) -> np.ndarray:
    assert value is not None  # build_track always sets the landmarks and the alignment
    return value
