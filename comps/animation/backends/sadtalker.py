"""The SadTalker modes: `sadtalker` (audio -> head motion + expression -> rendered face) and `sadtalker+gfpgan`.

Per avatar, once (then cached in memory under the avatar id, checked against the frame and box):
the square face region around the track's face box of the avatar's first frame (see `pasteback`),
cropped to 224x224 for the 3DMM regressor (its 70 coefficients; 73 in `full`, the crop parameters
appended) and to `size` x `size` as the renderer's source picture. Upstream aligns the 224 crop
with five landmarks against the BFM template (scale and shift from a least-squares fit) and crops
the source with an FFHQ-style landmark quad; here both come from the detector's box, so the
regressor sees a slightly looser, unaligned face. Coefficients are not persisted: they depend on
the loaded weights and cost one ResNet-50 pass.

Per request: audio -> 25 fps coefficients -> `size` faces -> pasted back (resize + soft-edged mask)
into the avatar's first frame -> optional GFPGAN -> ffmpeg (H.264 + AAC). A video avatar is
animated from its first frame. The frame rate is fixed at 25 (SadTalker's audio front-end).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from comps.animation.backends.base import AnimationBackend, LoadContext
from comps.animation.backends.wav2lip import GFPGAN
from comps.animation.encode import VideoEncoder
from comps.animation.enhance import FaceEnhancer
from comps.animation.options import RenderOptions
from comps.animation.pasteback import PasteBack, Region, crop_square, face_region
from comps.animation.render import RenderResult
from comps.animation.sadtalker.audio import FPS, SAMPLE_RATE
from comps.animation.sadtalker.pipeline import RECON_SIZE, SadTalkerPipeline
from comps.animation.settings import AnimationSettings
from comps.animation.track import FaceTrack, Frame
from comps.core.weights import resolve_weight

logger = logging.getLogger(__name__)

# Upstream computes [s, tx, ty] on its 256-pixel crop; ours is that crop scaled to 224, centred.
CROP_PARAMS = (RECON_SIZE / 256, 128.0, 128.0)


def checkpoint_dir(settings: AnimationSettings) -> Path:
    """`SADTALKER_CHECKPOINT_DIR`, else the model cache's `sadtalker` folder (`avatarchat download sadtalker`)."""
    return settings.sadtalker_checkpoint_dir or settings.model_cache_dir / "sadtalker"


@dataclass(frozen=True)
class Source:
    """An avatar's SadTalker source: its face region, the renderer's RGB picture and the 3DMM coefficients."""

    key: str  # digest of the first frame and its box: a re-registered avatar with the same id is re-extracted
    region: Region
    picture: npt.NDArray[np.uint8]  # (size, size, 3) RGB
    coeffs: npt.NDArray[np.float32]  # (70,) or (73,)


class SadTalkerMode:
    """A loaded SadTalker pipeline with per-avatar sources, the defaults from settings and optional GFPGAN."""

    fps = float(FPS)

    def __init__(
        self, *, pipeline: SadTalkerPipeline, settings: AnimationSettings, enhancer: FaceEnhancer | None = None
    ) -> None:
        """Adopt the loaded pipeline; `enhancer` makes this the `sadtalker+gfpgan` mode."""
        self.pipeline = pipeline
        self.settings = settings
        self.enhancer = enhancer
        self._lock = threading.Lock()
        self._sources: OrderedDict[str, Source] = OrderedDict()  # avatar id -> source, least recently used first

    def source(self, avatar_id: str, track: FaceTrack) -> Source:
        """The avatar's source, extracted on first use and cached (at most `max_avatars_cached`)."""
        frame, box = track.frames[0], track.boxes[0]
        key = hashlib.blake2b(frame.tobytes() + box.astype(np.int64).tobytes(), digest_size=16).hexdigest()
        with self._lock:
            found = self._sources.get(avatar_id)
            if found is not None and found.key == key:
                self._sources.move_to_end(avatar_id)
                return found
        region = face_region(box)
        picture = cv2.cvtColor(crop_square(frame, region, self.pipeline.size), cv2.COLOR_BGR2RGB)
        face = np.asarray(cv2.cvtColor(crop_square(frame, region, RECON_SIZE), cv2.COLOR_BGR2RGB), np.uint8)
        coeffs = self.pipeline.extract_coeffs(face, crop_params=CROP_PARAMS if self.pipeline.full else None)
        made = Source(key=key, region=region, picture=np.asarray(picture, np.uint8), coeffs=coeffs)
        logger.info("avatar %s: SadTalker coefficients extracted (region %s)", avatar_id, region)
        with self._lock:
            self._sources[avatar_id] = made
            while len(self._sources) > self.settings.max_avatars_cached:
                self._sources.popitem(last=False)
        return made

    def frames(
        self, avatar_id: str, track: FaceTrack, audio: npt.NDArray[np.float32], options: RenderOptions
    ) -> Generator[Frame, None, None]:
        """Full avatar frames (BGR uint8; `upscale` times larger with GFPGAN), one per 40 ms of audio.

        Raises:
            ValueError: audio shorter than one frame, or GFPGAN without the track's alignment.
        """
        if audio.ndim != 1 or audio.size < SAMPLE_RATE // FPS:
            raise ValueError(f"audio must be mono and at least one video frame ({1000 // FPS} ms) long")
        if self.enhancer is not None and track.align is None:
            raise ValueError("GFPGAN asked for, but the avatar's face track has no GFPGAN alignment")
        settings = self.settings
        source = self.source(avatar_id, track)
        faces = self.pipeline.render(
            source.picture,
            source.coeffs,
            audio,
            still=settings.sadtalker_still if options.still is None else options.still,
            expression_scale=(
                settings.sadtalker_expression_scale if options.expression_scale is None else options.expression_scale
            ),
            pose_style=settings.sadtalker_pose_style if options.pose_style is None else options.pose_style,
            seed=0 if options.seed is None else options.seed,
        )
        return self._compose(track, source, faces)

    def _compose(
        self, track: FaceTrack, source: Source, faces: Iterator[npt.NDArray[np.uint8]]
    ) -> Generator[Frame, None, None]:
        paste = PasteBack(track.frames[0], source.region)
        batch: list[Frame] = []
        for face in faces:
            batch.append(paste.paste(np.asarray(cv2.cvtColor(face, cv2.COLOR_RGB2BGR), np.uint8)))
            if len(batch) == self.pipeline.batch_size:
                yield from self._enhance(track, batch)
                batch = []
        yield from self._enhance(track, batch)

    def _enhance(self, track: FaceTrack, frames: list[Frame]) -> list[Frame]:
        if self.enhancer is None or not frames:
            return frames
        assert track.align is not None  # checked in frames()
        return self.enhancer.enhance(frames, [track.align[0]] * len(frames))

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
        """Render and encode at 25 fps; see `options.OptionsBackend`."""
        height, width = track.size
        scale = self.enhancer.upscale if self.enhancer is not None else 1
        frames = self.frames(avatar_id, track, audio, options)
        encoder = VideoEncoder(
            out_path=out_path,
            width=width * scale,
            height=height * scale,
            fps=self.fps,
            audio=audio,
            sample_rate=SAMPLE_RATE,
            workdir=workdir,
            ffmpeg=self.settings.ffmpeg,
        )
        with encoder, contextlib.closing(frames):
            for frame in frames:
                encoder.write(frame)
        logger.info("rendered %d SadTalker frames to %s", encoder.frames, out_path)
        return RenderResult(frames=encoder.frames, fps=self.fps, duration_s=encoder.frames / self.fps)

    def render(
        self, track: FaceTrack, audio: npt.NDArray[np.float32], *, out_path: Path, fps: float, workdir: Path
    ) -> RenderResult:
        """`AnimationBackend.render` with the default options; the service calls `render_avatar` instead.

        Raises:
            ValueError: `fps` is not 25.
        """
        if fps != self.fps:
            raise ValueError(f"SadTalker renders at {self.fps:g} fps only, got {fps:g}")
        return self.render_avatar("", track, audio, out_path=out_path, workdir=workdir, options=RenderOptions())


def _pipeline(context: LoadContext) -> SadTalkerPipeline:
    settings = context.settings
    folder = checkpoint_dir(settings)
    size, preprocess = settings.sadtalker_size, settings.sadtalker_preprocess

    def build() -> SadTalkerPipeline:
        logger.info("loading SadTalker %d/%s from %s", size, preprocess, folder)
        return SadTalkerPipeline(
            checkpoint_dir=folder,
            device=context.device.torch_device,
            size=size,
            preprocess=preprocess,
            batch_size=settings.sadtalker_batch_size,
        )

    return context.shared(f"sadtalker:{folder.resolve()}:{size}:{preprocess}", build)


def plain(context: LoadContext) -> AnimationBackend:
    """`sadtalker`: the networks load now; a missing file raises `CheckpointMissingError` naming it."""
    return SadTalkerMode(pipeline=_pipeline(context), settings=context.settings)


def with_gfpgan(context: LoadContext) -> AnimationBackend:
    """`sadtalker+gfpgan`: SadTalker, then GFPGAN on the face through the avatar's cached alignment."""
    settings = context.settings
    path = resolve_weight(
        GFPGAN[settings.gfpgan_model_version],
        explicit=settings.checkpoint_dir,
        cache_dir=settings.model_cache_dir,
        offline=settings.offline,
    )
    enhancer = context.shared(
        "gfpgan",
        lambda: FaceEnhancer.load(path, device=context.device.torch_device, upscale=settings.upscale_factor),
    )
    return SadTalkerMode(pipeline=_pipeline(context), settings=settings, enhancer=enhancer)
