"""The SadTalker modes: `sadtalker` (audio -> head motion + expression -> rendered face) and `sadtalker+gfpgan`.

Per avatar, once, at registration (`SadTalkerAnalyzer`, the modes' `Capabilities.analyzer`; the
registry stores the result with the face track): the face region of the avatar's first frame,
upstream's FFHQ square from the track's five landmarks (see `pasteback.landmark_region`), cut out
at render size as the renderer's source picture; the same landmarks carried into that picture
align the 224x224 crop of the 3DMM regressor (`sadtalker.align`, Deep3DFaceRecon's rule), whose 70
coefficients (73 in `full`: the alignment's `[s, tx, ty]` appended) are stored.

Per request: audio -> 25 fps coefficients -> `size` faces -> pasted back (resize + soft-edged mask)
into the avatar's first frame -> optional GFPGAN -> ffmpeg (H.264 + AAC). A video avatar is
animated from its first frame, as upstream SadTalker drives one source picture. The frame rate is
fixed at 25 (SadTalker's audio front-end).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from comps.animation.backends.base import AnimationBackend, Capabilities, SharedNetworks, required
from comps.animation.encode import VideoEncoder
from comps.animation.enhance import FaceEnhancer
from comps.animation.options import OPTION_NAMES
from comps.animation.pasteback import PasteBack, Region, crop_square, landmark_region
from comps.animation.render import RenderResult
from comps.animation.sadtalker.align import align_face
from comps.animation.sadtalker.audio import FPS, SAMPLE_RATE
from comps.animation.sadtalker.pipeline import SadTalkerPipeline
from comps.animation.settings import AnimationSettings
from comps.animation.track import Analysis, FaceTrack, Frame
from comps.core.contracts import SadTalkerOptions
from comps.core.device import Device

logger = logging.getLogger(__name__)

ANALYSIS = "sadtalker"
# Bump when the per-avatar analysis changes (region rule, alignment): stored analyses are redone.
ANALYSIS_REVISION = 3


def checkpoint_dir(settings: AnimationSettings) -> Path:
    """`SADTALKER_CHECKPOINT_DIR`, else the model cache's `sadtalker` folder (`avatarchat download sadtalker`)."""
    return settings.sadtalker_checkpoint_dir or settings.model_cache_dir / "sadtalker"


def load_pipeline(settings: AnimationSettings, device: Device) -> SadTalkerPipeline:
    """The SadTalker networks at the configured size and preprocess mode.

    Raises:
        CheckpointMissingError: naming the missing file and the download command.
    """
    folder = checkpoint_dir(settings)
    logger.info("loading SadTalker %d/%s from %s", settings.sadtalker_size, settings.sadtalker_preprocess, folder)
    return SadTalkerPipeline(
        checkpoint_dir=folder,
        device=device.torch_device,
        size=settings.sadtalker_size,
        preprocess=settings.sadtalker_preprocess,
        batch_size=settings.sadtalker_batch_size,
    )


@dataclass(frozen=True)
class Source:
    """An avatar's SadTalker source: its face region, the renderer's RGB picture and the 3DMM coefficients."""

    region: Region
    picture: npt.NDArray[np.uint8]  # (size, size, 3) RGB
    coeffs: npt.NDArray[np.float32]  # (70,) or (73,)


def _picture(frame: Frame, region: Region, size: int) -> npt.NDArray[np.uint8]:
    """The face region of `frame` at `size` x `size`, RGB (the renderer's source picture)."""
    square = crop_square(frame, region, size)
    return np.asarray(cv2.cvtColor(square, cv2.COLOR_BGR2RGB), np.uint8)


class SadTalkerAnalyzer:
    """The per-avatar SadTalker data (an `analysis.AvatarAnalyzer`): face region and 3DMM coefficients."""

    name = ANALYSIS

    def __init__(self, pipeline: SadTalkerPipeline) -> None:
        """Use the loaded pipeline's regressor."""
        self.pipeline = pipeline

    @functools.cached_property
    def version(self) -> str:
        """The regressor's weights (digest), the render size and the preprocess mode: what the analysis depends on."""
        digest = hashlib.blake2b(digest_size=16)
        for key, value in sorted(self.pipeline.nets.face3d.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        mode = "full" if self.pipeline.full else "crop"
        return f"{ANALYSIS_REVISION}:{self.pipeline.size}:{mode}:{digest.hexdigest()}"

    def analyze(self, track: FaceTrack) -> Analysis:
        """The avatar's face region (y, x, side) and 3DMM coefficients, from its first frame.

        Raises:
            ValueError: the track has no landmarks, or no region or alignment can be derived from them.
        """
        if track.landmarks is None:
            raise ValueError("the face track has no landmarks; SadTalker needs them to align the face")
        region = landmark_region(track.landmarks[0])
        size = self.pipeline.size
        picture = _picture(track.frames[0], region, size)
        points = (track.landmarks[0] - np.array([region.x, region.y], np.float32)) * (size / region.side)
        aligned = align_face(picture, points)
        coeffs = self.pipeline.extract_coeffs(aligned.crop, crop_params=aligned.params if self.pipeline.full else None)
        return {"region": np.array([region.y, region.x, region.side], np.int64), "coeffs": coeffs}


def _angles(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(values)


class SadTalkerMode:
    """A loaded SadTalker pipeline, the defaults from settings and optional GFPGAN."""

    fps = float(FPS)  # SadTalker's audio front-end makes 25 coefficient frames a second

    def __init__(
        self, *, pipeline: SadTalkerPipeline, settings: AnimationSettings, enhancer: FaceEnhancer | None = None
    ) -> None:
        """Adopt the loaded pipeline; `enhancer` makes this the `sadtalker+gfpgan` mode."""
        self.pipeline = pipeline
        self.settings = settings
        self.enhancer = enhancer
        self.analyzer = SadTalkerAnalyzer(pipeline)
        self.capabilities = Capabilities(
            fixed_fps=self.fps, options=OPTION_NAMES, min_audio_frames=1, analyzer=self.analyzer
        )

    def attach(self, track: FaceTrack) -> FaceTrack:
        """The track with this mode's analysis (what the avatar registry does at registration)."""
        analyzer = self.analyzer
        return replace(track, analysis={**track.analysis, analyzer.name: analyzer.analyze(track)})

    def source(self, track: FaceTrack) -> Source:
        """The avatar's source from its stored analysis.

        Raises:
            ValueError: the track was not analysed by this mode (the registry does it at registration).
        """
        found = track.analysis.get(self.analyzer.name)
        if found is None:
            raise ValueError("the avatar has no SadTalker analysis; register it with the SadTalker mode loaded")
        y, x, side = (int(v) for v in found["region"])
        region = Region(y=y, x=x, side=side)
        coeffs = np.asarray(found["coeffs"], np.float32)
        return Source(region=region, picture=_picture(track.frames[0], region, self.pipeline.size), coeffs=coeffs)

    def frames(
        self, track: FaceTrack, audio: npt.NDArray[np.float32], options: SadTalkerOptions
    ) -> Generator[Frame, None, None]:
        """Full avatar frames (BGR uint8; `upscale` times larger with GFPGAN), one per 40 ms of audio.

        Raises:
            ValueError: audio shorter than one frame, GFPGAN without the track's alignment, or the
                track without this mode's analysis.
        """
        if audio.ndim != 1 or audio.size < SAMPLE_RATE // FPS:
            raise ValueError(f"audio must be mono and at least one video frame ({1000 // FPS} ms) long")
        if self.enhancer is not None and track.align is None:
            raise ValueError("GFPGAN asked for, but the avatar's face track has no GFPGAN alignment")
        settings = self.settings
        source = self.source(track)
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
            yaw=_angles(options.input_yaw),
            pitch=_angles(options.input_pitch),
            roll=_angles(options.input_roll),
            blink=options.blink,
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
        """Render and encode at 25 fps; see `AnimationBackend.render`.

        Raises:
            ValueError: `fps` is not 25, or as `frames`.
        """
        if fps != self.fps:
            raise ValueError(f"SadTalker renders at {self.fps:g} fps only, got {fps:g}")
        if self.analyzer.name not in track.analysis:
            track = self.attach(track)
        height, width = track.size
        scale = self.enhancer.upscale if self.enhancer is not None else 1
        frames = self.frames(track, audio, options)
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


def plain(settings: AnimationSettings, networks: SharedNetworks) -> AnimationBackend:
    """`sadtalker`: audio -> head motion and expression -> the rendered face, pasted back."""
    return SadTalkerMode(pipeline=required(networks.sadtalker, "SadTalker"), settings=settings)


def with_gfpgan(settings: AnimationSettings, networks: SharedNetworks) -> AnimationBackend:
    """`sadtalker+gfpgan`: SadTalker, then GFPGAN on the face through the avatar's cached alignment."""
    return SadTalkerMode(
        pipeline=required(networks.sadtalker, "SadTalker"),
        settings=settings,
        enhancer=required(networks.gfpgan, "GFPGAN"),
    )
