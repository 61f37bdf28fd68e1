"""`avatarchat download wav2lip | gfpgan | sadtalker`: fetch the animation weights into the model cache."""

from __future__ import annotations

import logging
from pathlib import Path

from comps.animation.backends.wav2lip import GFPGAN, WAV2LIP, WAV2LIP_GAN
from comps.animation.detect import RETINAFACE
from comps.animation.settings import AnimationSettings
from comps.core.settings import load_settings
from comps.core.weights import WeightSpec, resolve_weight

logger = logging.getLogger(__name__)

# SadTalker's V0.0.2 release: the combined 256/512 checkpoints and the two mapping networks.
_SADTALKER_RELEASE = "https://github.com/OpenTalker/SadTalker/releases/download/v0.0.2-rc/"
SADTALKER: tuple[WeightSpec, ...] = tuple(
    WeightSpec(component="sadtalker", filename=name, url=f"{_SADTALKER_RELEASE}{name}")
    for name in (
        "SadTalker_V0.0.2_256.safetensors",
        "SadTalker_V0.0.2_512.safetensors",
        "mapping_00229-model.pth.tar",
        "mapping_00109-model.pth.tar",
    )
)


def _fetch(specs: tuple[WeightSpec, ...], *, explicit: Path | None = None) -> list[Path]:
    """Each file from `explicit` (default `ANIMATION_CHECKPOINT_DIR`) or the cache, downloaded when absent."""
    settings = load_settings(AnimationSettings)
    folder = explicit if explicit is not None else settings.checkpoint_dir
    found = [resolve_weight(spec, explicit=folder, cache_dir=settings.model_cache_dir, offline=False) for spec in specs]
    for path in found:
        logger.info("ready: %s", path)
    return found


def download_wav2lip() -> list[Path]:
    """`wav2lip.pth` and `wav2lip_gan.pth` (the published Wav2Lip checkpoints)."""
    return _fetch((WAV2LIP, WAV2LIP_GAN))


def download_gfpgan() -> list[Path]:
    """GFPGAN (`GFPGAN_MODEL_VERSION`, v1.4 by default) and facexlib's RetinaFace detector weights."""
    settings = load_settings(AnimationSettings)
    return _fetch((GFPGAN[settings.gfpgan_model_version], RETINAFACE))


def download_sadtalker() -> list[Path]:
    """SadTalker V0.0.2: the 256 and 512 safetensors and both mapping checkpoints.

    Looks where the SadTalker mode loads from: `SADTALKER_CHECKPOINT_DIR` when set.
    """
    settings = load_settings(AnimationSettings)
    return _fetch(SADTALKER, explicit=settings.sadtalker_checkpoint_dir)
