"""SadTalker benchmark: frames/s at 256 with the stages split out, next to Wav2Lip on the same speech.

Run: .venv/bin/python bench/sadtalker.py [--frames 4] [--batch 4]

Deterministic weights (the fixtures' fill rule; no checkpoint is downloaded), Piper speech, the
astronaut avatar (its face track built once, not timed). SadTalker goes through the service's
`SadTalkerMode.render_avatar` (the path `inference_mode: "sadtalker"` takes), with timers wrapped
around its stages: the audio front-end, audio -> coefficients (audio2exp + audio2pose + smoothing),
the renderer (keypoints, mapping, dense motion, SPADE generator), and what remains: paste-back
and ffmpeg. Coefficient extraction from the avatar is excluded (cached per avatar). Wav2Lip runs
`Wav2LipRenderer.render` on the same audio and avatar (best of 2 after a warm-up).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.models import speak  # noqa: E402
from support.wav2lip_weights import deterministic_wav2lip  # noqa: E402

import comps.animation.sadtalker.pipeline as pipeline_module  # noqa: E402
from comps.animation.backends.sadtalker import SadTalkerMode  # noqa: E402
from comps.animation.detect import HaarDetector, build_track  # noqa: E402
from comps.animation.options import RenderOptions  # noqa: E402
from comps.animation.render import Wav2LipRenderer  # noqa: E402
from comps.animation.sadtalker.audio2exp import ExpNet  # noqa: E402
from comps.animation.sadtalker.audio2pose import Audio2Pose  # noqa: E402
from comps.animation.sadtalker.checkpoints import SadTalkerNetworks  # noqa: E402
from comps.animation.sadtalker.face3d import ReconNet  # noqa: E402
from comps.animation.sadtalker.generator import OcclusionAwareSPADEGenerator  # noqa: E402
from comps.animation.sadtalker.keypoints import KPDetector  # noqa: E402
from comps.animation.sadtalker.mapping import MappingNet  # noqa: E402
from comps.animation.sadtalker.renderer import FaceRenderer  # noqa: E402
from comps.animation.settings import AnimationSettings  # noqa: E402
from comps.core.device import resolve_device  # noqa: E402

SR = 16_000
FPS = 25
ASTRONAUT = (REPO / ".." / "shared" / "assets" / "avatar_astronaut.png").resolve()


def load_fill() -> Any:
    """The fixtures' deterministic fill (tests/comps/animation/sadtalker/fill.py)."""
    path = REPO / "tests" / "comps" / "animation" / "sadtalker" / "fill.py"
    spec = importlib.util.spec_from_file_location("sadtalker_fill", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def networks() -> SadTalkerNetworks:
    """Every network with the fill rule (spectral norms fixed), in eval mode."""
    fill = load_fill()

    def filled(module: torch.nn.Module) -> Any:
        module.load_state_dict(fill.snfix(fill.filled_state_dict(module.state_dict())), strict=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="video frames of speech (40 ms each)")
    parser.add_argument("--batch", type=int, default=4, help="SadTalker frames per generator call")
    parser.add_argument("--wav2lip-seconds", type=float, default=2.0, help="Wav2Lip again on this much speech")
    parser.add_argument("--keep", type=Path, default=None, help="copy the SadTalker MP4 here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = resolve_device("cpu")
    speech = speak("Hello, and welcome! I am the avatar of this chat.")
    audio = speech[SR // 2 : SR // 2 + args.frames * SR // FPS]
    frame = cv2.imread(str(ASTRONAUT))
    track = build_track([frame], HaarDetector(), fps=None)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.frames} frames ({audio.size / SR:g} s)")

    with tempfile.TemporaryDirectory(prefix="bench-sadtalker-") as tmp:
        work = Path(tmp)
        settings = AnimationSettings(device="cpu", sadtalker_batch_size=args.batch)  # type: ignore[call-arg]
        pipe = pipeline_module.SadTalkerPipeline(
            checkpoint_dir=work, device=device.torch_device, size=256, batch_size=args.batch, networks=networks()
        )
        mode = SadTalkerMode(pipeline=pipe, settings=settings)
        start = time.perf_counter()
        mode.source("astronaut", track)
        extract = time.perf_counter() - start

        spent: dict[str, float] = defaultdict(float)
        pipeline_module.audio_features = timing(spent, "audio front-end", pipeline_module.audio_features)
        pipeline_module.audio_to_coeffs = timing(spent, "audio -> coeffs", pipeline_module.audio_to_coeffs)
        for name in ("prepare", "render"):
            setattr(FaceRenderer, name, timing(spent, "renderer", getattr(FaceRenderer, name)))
        start = time.perf_counter()
        result = mode.render_avatar(
            "astronaut", track, audio, out_path=work / "sadtalker.mp4", workdir=work / "s", options=RenderOptions()
        )
        total = time.perf_counter() - start
        spent["paste-back + encode"] = total - sum(spent.values())
        if args.keep is not None:
            shutil.copyfile(work / "sadtalker.mp4", args.keep)

        renderer = Wav2LipRenderer(model=deterministic_wav2lip(), device=device, batch_size=16)
        times = []
        for _ in range(3):  # the first is a warm-up
            start = time.perf_counter()
            w2l = renderer.render(track, audio, out_path=work / "w2l.mp4", fps=FPS, enhance=False, workdir=work / "w")
            times.append(time.perf_counter() - start)
        wav2lip_s = min(times[1:])
        longer = speech[: int(args.wav2lip_seconds * SR)]
        start = time.perf_counter()
        w2l_long = renderer.render(track, longer, out_path=work / "w2l.mp4", fps=FPS, enhance=False, workdir=work / "w")
        long_s = time.perf_counter() - start

    n = result.frames
    print(f"\n== SadTalker 256 (crop, batch {args.batch}, fp32 CPU), {n} frames ==")
    print(f"coefficient extraction (once per avatar, cached; excluded): {extract:8.2f} s")
    for stage, seconds in spent.items():
        print(f"{stage:22s} {seconds:8.2f} s  {seconds / n:8.3f} s/frame  ({100 * seconds / total:4.1f} %)")
    print(f"{'total':22s} {total:8.2f} s  {n / total:8.4f} frames/s  {total / (n / FPS):6.0f} s compute per s of video")
    print(f"\n== Wav2Lip (full pipeline, same audio and avatar), {w2l.frames} frames ==")
    print(
        f"{'total':22s} {wav2lip_s:8.2f} s  {w2l.frames / wav2lip_s:8.2f} frames/s  (one padded batch of 16 + ffmpeg)"
    )
    label = f"on {longer.size / SR:g} s of speech"
    print(f"{label:22s} {long_s:8.2f} s  {w2l_long.frames / long_s:8.2f} frames/s")
    print(f"\nSadTalker / Wav2Lip time per frame, same audio: {(total / n) / (wav2lip_s / w2l.frames):.0f}x")
    print(f"SadTalker / Wav2Lip on {longer.size / SR:g} s: {(total / n) / (long_s / w2l_long.frames):.0f}x")


if __name__ == "__main__":
    main()
