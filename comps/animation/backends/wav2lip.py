"""The Wav2Lip modes: `wav2lip` (wav2lip.pth), `wav2lip_gan` (wav2lip_gan.pth), `wav2lip+gfpgan` (GAN + GFPGAN)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from comps.animation.backends.base import AnimationBackend, Capabilities, SharedNetworks, required
from comps.animation.enhance import FaceEnhancer
from comps.animation.render import RenderResult, Wav2LipRenderer
from comps.animation.session import LipSyncSession
from comps.animation.settings import AnimationSettings
from comps.animation.track import FaceTrack
from comps.animation.wav2lip.checkpoint import DOWNLOAD_HINT, load_wav2lip
from comps.core.contracts import SadTalkerOptions
from comps.core.device import Device
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

# Each Wav2Lip mode's checkpoint, and the modes that run GFPGAN on the face.
CHECKPOINTS: dict[str, WeightSpec] = {"wav2lip": WAV2LIP, "wav2lip_gan": WAV2LIP_GAN, "wav2lip+gfpgan": WAV2LIP_GAN}
ENHANCING = frozenset({"wav2lip+gfpgan"})


@dataclass(frozen=True)
class Wav2LipMode:
    """One Wav2Lip mode: a renderer (shared with the other modes on the same checkpoint) and whether to enhance."""

    renderer: Wav2LipRenderer
    enhance: bool

    @property
    def capabilities(self) -> Capabilities:
        """Any frame rate, no options, no per-avatar analysis, streaming; at shutdown the renderer's FP8 statistics."""
        return Capabilities(finish=self.renderer.finish_fp8, session=self.session)

    def session(self, track: FaceTrack, fps: float) -> LipSyncSession:
        """A streaming session on the shared renderer."""
        return LipSyncSession(self.renderer, track, fps=fps, enhance=self.enhance)

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
        """Render through the shared renderer; see `AnimationBackend.render` (`options` sets nothing here)."""
        return self.renderer.render(track, audio, out_path=out_path, fps=fps, enhance=self.enhance, workdir=workdir)


def checkpoint(settings: AnimationSettings, spec: WeightSpec, *, mode: str) -> Path:
    """Find a weight file: `checkpoint_path` for the default mode's Wav2Lip, else `checkpoint_dir`, else the cache.

    Raises:
        WeightsMissingError: naming the file, the places searched and the download command.
    """
    if spec.component == "wav2lip" and mode == settings.inference_mode and settings.checkpoint_path is not None:
        if not settings.checkpoint_path.is_file():  # never fall back when the operator named a file
            raise WeightsMissingError(
                f"Wav2Lip checkpoint {settings.checkpoint_path} (CHECKPOINT_PATH) not found; "
                f"fetch {spec.filename} with `{DOWNLOAD_HINT}` or fix the path"
            )
        return settings.checkpoint_path
    setting = "CHECKPOINT_PATH or ANIMATION_CHECKPOINT_DIR" if mode == settings.inference_mode else None
    return resolve_weight(
        spec,
        explicit=settings.checkpoint_dir,
        cache_dir=settings.model_cache_dir,
        offline=settings.offline,
        setting=setting or "ANIMATION_CHECKPOINT_DIR",
    )


def load_renderers(
    paths: Mapping[str, Path], *, settings: AnimationSettings, device: Device, enhancer: FaceEnhancer | None
) -> dict[str, Wav2LipRenderer]:
    """One renderer per checkpoint file in `paths` (Wav2Lip mode -> its file); modes on the same file share it.

    A renderer holds `enhancer` when one of its modes enhances (the renderer's GFPGAN is fixed at
    construction; a mode that does not enhance never uses it).
    """
    modes_of: dict[Path, list[str]] = {}
    for mode, path in paths.items():
        modes_of.setdefault(path.resolve(), []).append(mode)
    renderers: dict[str, Wav2LipRenderer] = {}
    bf16 = device.bf16(settings.bf16)
    why = "as ANIMATION_BF16 sets" if settings.bf16 is not None else "ANIMATION_BF16=auto"
    native = "native bf16 kernels" if device.native_bf16 else "no native bf16 kernels"
    logger.info("Wav2Lip runs in %s (%s; %s here)", "bf16" if bf16 else "fp32", why, native)
    for path, modes in modes_of.items():
        enhances = not ENHANCING.isdisjoint(modes)
        logger.info("loading Wav2Lip %s for %s", path, ", ".join(modes))
        renderer = Wav2LipRenderer(
            model=load_wav2lip(path, device=device.torch_device),
            device=device,
            batch_size=settings.batch_size,
            bf16=bf16,
            compile=settings.compile,
            enhancer=required(enhancer, "GFPGAN") if enhances else None,
            ffmpeg=settings.ffmpeg,
            fp8_config=settings.fp8_config,  # FP8 (Gaudi) on the folded network; no-op when unset
        )
        renderers.update(dict.fromkeys(modes, renderer))
    return renderers


def _mode(networks: SharedNetworks, mode: str) -> Wav2LipMode:
    renderer = required(networks.wav2lip.get(mode), f"the Wav2Lip renderer of {mode}")
    return Wav2LipMode(renderer=renderer, enhance=mode in ENHANCING)


def plain(settings: AnimationSettings, networks: SharedNetworks) -> AnimationBackend:
    """`wav2lip`: the original checkpoint (sharpest sync, blurrier mouth)."""
    return _mode(networks, "wav2lip")


def gan(settings: AnimationSettings, networks: SharedNetworks) -> AnimationBackend:
    """`wav2lip_gan`: the GAN-trained checkpoint (better looking mouth)."""
    return _mode(networks, "wav2lip_gan")


def gan_with_gfpgan(settings: AnimationSettings, networks: SharedNetworks) -> AnimationBackend:
    """`wav2lip+gfpgan`: Wav2Lip-GAN, then GFPGAN on the face region (OPEA's `wav2lip+gfpgan`)."""
    return _mode(networks, "wav2lip+gfpgan")
