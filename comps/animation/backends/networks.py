"""The networks several modes share, loaded once, explicitly, for the enabled modes, before any mode is built.

`wav2lip_gan` and `wav2lip+gfpgan` use one Wav2Lip-GAN network (any modes on the same checkpoint
file share one renderer); `wav2lip+gfpgan` and `sadtalker+gfpgan` one GFPGAN; the two SadTalker
modes one pipeline. A new mode that needs one of them is added to the tables here.
"""

from __future__ import annotations

from pathlib import Path

from comps.animation.backends import sadtalker, wav2lip
from comps.animation.backends.base import SharedNetworks
from comps.animation.enhance import FaceEnhancer
from comps.animation.settings import AnimationSettings
from comps.core.device import Device
from comps.core.weights import resolve_weight

GFPGAN_MODES = frozenset({"wav2lip+gfpgan", "sadtalker+gfpgan"})
SADTALKER_MODES = frozenset({"sadtalker", "sadtalker+gfpgan"})


def load_networks(settings: AnimationSettings, device: Device) -> SharedNetworks:
    """Load what `settings.modes` need; blocking.

    The weight files are found first (Wav2Lip's, then GFPGAN's), so a missing one stops start-up
    before anything heavy loads.

    Raises:
        WeightsMissingError: a Wav2Lip or GFPGAN file is missing (the message names it).
        CheckpointMissingError: a SadTalker file is missing (likewise).
    """
    modes = settings.modes
    paths: dict[str, Path] = {
        mode: wav2lip.checkpoint(settings, wav2lip.CHECKPOINTS[mode], mode=mode)
        for mode in modes
        if mode in wav2lip.CHECKPOINTS
    }
    gfpgan = None
    if not GFPGAN_MODES.isdisjoint(modes):
        spec = wav2lip.GFPGAN[settings.gfpgan_model_version]
        path = resolve_weight(
            spec, explicit=settings.checkpoint_dir, cache_dir=settings.model_cache_dir, offline=settings.offline
        )
        gfpgan = FaceEnhancer.load(path, device=device.torch_device, upscale=settings.upscale_factor)
    return SharedNetworks(
        wav2lip=wav2lip.load_renderers(paths, settings=settings, device=device, enhancer=gfpgan),
        gfpgan=gfpgan,
        sadtalker=sadtalker.load_pipeline(settings, device) if not SADTALKER_MODES.isdisjoint(modes) else None,
    )
