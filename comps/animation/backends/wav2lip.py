"""The Wav2Lip modes: `wav2lip` (wav2lip.pth), `wav2lip_gan` (wav2lip_gan.pth), `wav2lip+gfpgan` (GAN + GFPGAN)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from comps.animation.backends.base import AnimationBackend, LoadContext
from comps.animation.enhance import FaceEnhancer
from comps.animation.render import RenderResult, Wav2LipRenderer
from comps.animation.track import FaceTrack
from comps.animation.wav2lip.checkpoint import DOWNLOAD_HINT, load_wav2lip
from comps.core.weights import WeightsMissingError, WeightSpec, resolve_weight

logger = logging.getLogger(__name__)

# The published checkpoints (Rudrabha/Wav2Lip), from the Hugging Face mirror OPEA's download script uses.
_MIRROR = "https://huggingface.co/camenduru/Wav2Lip/resolve/main/checkpoints/"
WAV2LIP = WeightSpec(component="wav2lip", filename="wav2lip.pth", url=f"{_MIRROR}wav2lip.pth")
WAV2LIP_GAN = WeightSpec(component="wav2lip", filename="wav2lip_gan.pth", url=f"{_MIRROR}wav2lip_gan.pth")
# GFPGAN's own release assets; both versions are GFPGANv1Clean with the same hyper-parameters.
_GFPGAN_RELEASE = "https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/"
GFPGAN: dict[str, WeightSpec] = {
    version: WeightSpec(
        component="gfpgan", filename=f"GFPGANv{version}.pth", url=f"{_GFPGAN_RELEASE}GFPGANv{version}.pth"
    )
    for version in ("1.3", "1.4")
}


@dataclass(frozen=True)
class Wav2LipMode:
    """One Wav2Lip mode: a renderer (shared with the other modes on the same checkpoint) and whether to enhance."""

    renderer: Wav2LipRenderer
    enhance: bool

    def render(
        self, track: FaceTrack, audio: npt.NDArray[np.float32], *, out_path: Path, fps: float, workdir: Path
    ) -> RenderResult:
        """Render through the shared renderer; see `AnimationBackend.render`."""
        return self.renderer.render(track, audio, out_path=out_path, fps=fps, enhance=self.enhance, workdir=workdir)

    def finish(self) -> None:
        """At shutdown: write FP8 MEASURE statistics (once per shared renderer)."""
        self.renderer.finish_fp8()


def checkpoint(context: LoadContext, spec: WeightSpec, *, mode: str) -> Path:
    """Find a weight file: `checkpoint_path` for the default mode's Wav2Lip, else `checkpoint_dir`, else the cache.

    Raises:
        WeightsMissingError: naming the file, the places searched and the download command.
    """
    settings = context.settings
    if spec.component == "wav2lip" and mode == settings.inference_mode and settings.checkpoint_path is not None:
        if not settings.checkpoint_path.is_file():  # never fall back when the operator named a file
            raise WeightsMissingError(
                f"Wav2Lip checkpoint {settings.checkpoint_path} (CHECKPOINT_PATH) not found; "
                f"fetch {spec.filename} with `{DOWNLOAD_HINT}` or fix the path"
            )
        return settings.checkpoint_path
    return resolve_weight(
        spec, explicit=settings.checkpoint_dir, cache_dir=settings.model_cache_dir, offline=settings.offline
    )


def _renderer(context: LoadContext, spec: WeightSpec, *, mode: str) -> Wav2LipRenderer:
    path = checkpoint(context, spec, mode=mode)
    settings = context.settings
    enhancer = _enhancer(context) if "wav2lip+gfpgan" in settings.modes and spec is WAV2LIP_GAN else None

    def build() -> Wav2LipRenderer:
        return Wav2LipRenderer(
            model=load_wav2lip(path, device=context.device.torch_device),
            device=context.device,
            batch_size=settings.batch_size,
            bf16=settings.bf16,
            compile=settings.compile,
            enhancer=enhancer,
            ffmpeg=settings.ffmpeg,
            fp8_config=settings.fp8_config,  # FP8 (Gaudi) on the folded network; no-op when unset
        )

    return context.shared(f"wav2lip:{path.resolve()}", build)


def _enhancer(context: LoadContext) -> FaceEnhancer:
    settings = context.settings
    spec = GFPGAN[settings.gfpgan_model_version]
    path = resolve_weight(
        spec, explicit=settings.checkpoint_dir, cache_dir=settings.model_cache_dir, offline=settings.offline
    )
    return context.shared(
        "gfpgan",
        lambda: FaceEnhancer.load(path, device=context.device.torch_device, upscale=settings.upscale_factor),
    )


def plain(context: LoadContext) -> AnimationBackend:
    """`wav2lip`: the original checkpoint (sharpest sync, blurrier mouth)."""
    return Wav2LipMode(renderer=_renderer(context, WAV2LIP, mode="wav2lip"), enhance=False)


def gan(context: LoadContext) -> AnimationBackend:
    """`wav2lip_gan`: the GAN-trained checkpoint (better looking mouth)."""
    return Wav2LipMode(renderer=_renderer(context, WAV2LIP_GAN, mode="wav2lip_gan"), enhance=False)


def gan_with_gfpgan(context: LoadContext) -> AnimationBackend:
    """`wav2lip+gfpgan`: Wav2Lip-GAN, then GFPGAN on the face region (OPEA's `wav2lip+gfpgan`)."""
    return Wav2LipMode(renderer=_renderer(context, WAV2LIP_GAN, mode="wav2lip+gfpgan"), enhance=True)
