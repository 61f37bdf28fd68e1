"""SadTalker 256 section of bench/animation.py: per-stage time and frames/s, next to Wav2Lip on the same clip.

SadTalker runs the service's `SadTalkerMode.render` (the path `inference_mode: "sadtalker"`
takes) with deterministic weights (the fixtures' fill rule; no checkpoint is downloaded), fp32 on
the CPU, with timers patched around its stages for the one render: the audio front-end, audio ->
coefficients (audio2exp + audio2pose + smoothing), the renderer (keypoints, mapping, dense motion,
SPADE generator), and what remains: paste-back and ffmpeg. Coefficient extraction (the per-avatar
3DMM pass) is timed on its own and left out of the total: the service does it once per avatar.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import numpy.typing as npt
import torch
from support.sadtalker_weights import filled as fill_rule_state  # type: ignore[import-not-found]

import comps.animation.sadtalker.pipeline as pipeline_module
from comps.animation.backends.sadtalker import SadTalkerMode
from comps.animation.detect import HaarDetector, build_track
from comps.animation.render import Wav2LipRenderer
from comps.animation.sadtalker.audio import FPS, SAMPLE_RATE, audio_features
from comps.animation.sadtalker.audio2exp import ExpNet
from comps.animation.sadtalker.audio2pose import Audio2Pose
from comps.animation.sadtalker.checkpoints import SadTalkerNetworks
from comps.animation.sadtalker.coeffs import audio_to_coeffs
from comps.animation.sadtalker.face3d import ReconNet
from comps.animation.sadtalker.generator import OcclusionAwareSPADEGenerator
from comps.animation.sadtalker.keypoints import KPDetector
from comps.animation.sadtalker.mapping import MappingNet
from comps.animation.sadtalker.renderer import FaceRenderer
from comps.animation.settings import AnimationSettings
from comps.animation.track import FaceTrack, Frame
from comps.core.contracts import SadTalkerOptions

# Seconds of compute per second of video that users report for upstream SadTalker on GPUs.
ANCHOR = "12–36 s on GPUs, upstream users"
SKIP_S = 0.5  # the clip starts half a second into the speech, past the leading silence


def speech_clip(speech: npt.NDArray[np.float32], frames: int) -> npt.NDArray[np.float32]:
    """`frames` video frames' worth of speech (40 ms each, 16 kHz), starting `SKIP_S` in."""
    start = int(SKIP_S * SAMPLE_RATE)
    return speech[start : start + frames * SAMPLE_RATE // FPS]


def networks() -> SadTalkerNetworks:
    """Every network with the fill rule (spectral norms fixed), in eval mode."""

    def filled(module: torch.nn.Module) -> Any:
        module.load_state_dict(fill_rule_state(module), strict=True)
        return module.eval()

    return SadTalkerNetworks(
        face3d=filled(ReconNet()),
        audio2exp=filled(ExpNet()),
        audio2pose=filled(Audio2Pose()),
        kp_extractor=filled(KPDetector()),
        generator=filled(OcclusionAwareSPADEGenerator()),
        mapping=filled(MappingNet(coeff_nc=70)),
    )


def timing(spent: dict[str, float], stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` that adds its wall time to `spent[stage]`."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[stage] += time.perf_counter() - start

    return timed


@contextlib.contextmanager
def stage_timers(spent: dict[str, float]) -> Iterator[None]:
    """Time the pipeline's stages into `spent` (seconds) while inside; the originals are restored on exit."""
    with contextlib.ExitStack() as stack:
        # The pipeline calls these through its own module's names, so they are patched there.
        stack.enter_context(
            mock.patch.object(pipeline_module, "audio_features", timing(spent, "audio front-end", audio_features))
        )
        stack.enter_context(
            mock.patch.object(pipeline_module, "audio_to_coeffs", timing(spent, "audio -> coeffs", audio_to_coeffs))
        )
        for name in ("prepare", "render"):
            timed = timing(spent, "renderer", getattr(FaceRenderer, name))
            stack.enter_context(mock.patch.object(FaceRenderer, name, timed))
        yield


def prepare_avatar(mode: SadTalkerMode, track: FaceTrack) -> FaceTrack:
    """Per-avatar SadTalker data (face region, 3DMM coefficients), made at registration; excluded from timing.

    Returns the track to render with (carrying that data).
    """
    return mode.attach(track)


@dataclass(frozen=True)
class SadTalkerRun:
    """One SadTalker render: frames out, per-stage and total wall seconds, and the excluded extraction."""

    frames: int
    stages: dict[str, float]  # stage -> seconds; sums to `total`
    total: float
    extract: float  # coefficient extraction, once per avatar (not in `total`)


def measure_sadtalker(track: FaceTrack, audio: npt.NDArray[np.float32], *, batch: int, work: Path) -> SadTalkerRun:
    """Render `audio` once on `track` at 256 (crop, `batch` frames per generator call), stages timed."""
    settings = AnimationSettings(device="cpu", sadtalker_batch_size=batch)  # type: ignore[call-arg]
    pipe = pipeline_module.SadTalkerPipeline(
        checkpoint_dir=work, device=torch.device("cpu"), size=256, batch_size=batch, networks=networks()
    )
    mode = SadTalkerMode(pipeline=pipe, settings=settings)
    start = time.perf_counter()
    track = prepare_avatar(mode, track)
    extract = time.perf_counter() - start
    spent: dict[str, float] = defaultdict(float)
    with stage_timers(spent):
        start = time.perf_counter()
        result = mode.render(
            track, audio, out_path=work / "sadtalker.mp4", fps=25.0, workdir=work / "s", options=SadTalkerOptions()
        )
        total = time.perf_counter() - start
    stages = dict(spent)
    stages["paste-back + encode"] = total - sum(spent.values())
    return SadTalkerRun(frames=result.frames, stages=stages, total=total, extract=extract)


def measure_wav2lip(
    renderer: Wav2LipRenderer, track: FaceTrack, audio: npt.NDArray[np.float32], *, repeats: int, work: Path
) -> tuple[float, int]:
    """Best wall seconds of `renderer.render` on `audio` over `repeats` runs after a warm-up, and its frame count."""
    times, frames = [], 0
    for _ in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        frames = renderer.render(
            track, audio, out_path=work / "w2l.mp4", fps=float(FPS), enhance=False, workdir=work / "w"
        ).frames
        times.append(time.perf_counter() - start)
    return min(times[1:]), frames


def run(
    image: Frame,
    speech: npt.NDArray[np.float32],
    renderer: Wav2LipRenderer,
    *,
    frames: int,
    batch: int,
    repeats: int,
    wav2lip_fps: float,
    wav2lip_seconds: float,
) -> None:
    """Measure and print SadTalker on `frames` frames of `speech`, and Wav2Lip's `renderer` on the same clip.

    `image` is the avatar (BGR); `wav2lip_fps` is the full-pipeline frames/s already measured on
    `wav2lip_seconds` of speech on it, shown beside.
    """
    audio = speech_clip(speech, frames)
    # The service's registration-time face track (landmarks included, which SadTalker aligns with); not timed.
    track = build_track([image], HaarDetector(), fps=None)
    with tempfile.TemporaryDirectory(prefix="bench-sadtalker-") as tmp:
        sad = measure_sadtalker(track, audio, batch=batch, work=Path(tmp))
        w2l_s, w2l_frames = measure_wav2lip(renderer, track, audio, repeats=repeats, work=Path(tmp))
    n, total = sad.frames, sad.total
    print(
        f"\n== SadTalker 256 (crop, batch {batch}, fp32 CPU), image avatar, {n} frames "
        f"({audio.size / SAMPLE_RATE:g} s of the same speech, from {SKIP_S:g} s) =="
    )
    print(f"coefficient extraction (3DMM, once per avatar, cached; excluded): {sad.extract:.2f} s")
    for stage, seconds in sad.stages.items():
        print(f"{stage:22s} {seconds:8.2f} s  {seconds / n:8.3f} s/frame  ({100 * seconds / total:4.1f} %)")
    print(f"{'total':22s} {total:8.2f} s  {n / total:8.4f} frames/s")
    print(f"compute per s of video: {total / (n / FPS):.0f} s  (anchor: {ANCHOR})")
    print(f"\n== Wav2Lip full pipeline (Wav2LipRenderer.render), same clip and avatar, {w2l_frames} frames ==")
    print(f"{'same clip':22s} {w2l_s:8.2f} s  {w2l_frames / w2l_s:8.2f} frames/s  (best of {repeats} after a warm-up)")
    print(f"{f'{wav2lip_seconds:g} s (measured above)':22s} {'':10s}  {wav2lip_fps:8.2f} frames/s")
    per_frame = total / n
    print(f"\nSadTalker / Wav2Lip time per frame, same clip: {per_frame / (w2l_s / w2l_frames):.0f}x")
    print(f"SadTalker / Wav2Lip time per frame, vs Wav2Lip on {wav2lip_seconds:g} s: {per_frame * wav2lip_fps:.0f}x")
