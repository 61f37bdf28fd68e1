"""`avatarchat download wav2lip | gfpgan | sadtalker`: fetch the animation weights into the model cache."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

from comps.animation.backends.networks import GFPGAN_MODES, SADTALKER_MODES
from comps.animation.backends.sadtalker import checkpoint_dir as sadtalker_folder
from comps.animation.backends.wav2lip import CHECKPOINTS, GFPGAN, WAV2LIP, WAV2LIP_GAN, checkpoint
from comps.animation.detect import RETINAFACE
from comps.animation.sadtalker.checkpoints import CheckpointMissingError, mapping_name, safetensors_name
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


def weight_checks(settings: AnimationSettings) -> list[Callable[[], Path]]:
    """One look-up per weight file the enabled modes load (what `load_networks` finds), for a preflight.

    Each returns the file's path or raises `WeightsMissingError` (SadTalker's: `CheckpointMissingError`);
    each downloads only where `settings.offline` allows, as the service itself would.
    """
    modes = settings.modes
    checks: list[Callable[[], Path]] = [
        functools.partial(checkpoint, settings, CHECKPOINTS[mode], mode=mode) for mode in modes if mode in CHECKPOINTS
    ]
    found = functools.partial(resolve_weight, explicit=settings.checkpoint_dir, cache_dir=settings.model_cache_dir)
    if not GFPGAN_MODES.isdisjoint(modes):
        checks.append(functools.partial(found, GFPGAN[settings.gfpgan_model_version], offline=settings.offline))
    if settings.face_detector == "retinaface":
        checks.append(functools.partial(found, RETINAFACE, offline=settings.offline))
    if not SADTALKER_MODES.isdisjoint(modes):
        folder = sadtalker_folder(settings)
        names = (safetensors_name(settings.sadtalker_size), mapping_name(settings.sadtalker_preprocess))
        checks += [functools.partial(_sadtalker_file, folder, name) for name in names]
    return checks


def _sadtalker_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise CheckpointMissingError(name, folder)
    return path
