"""Inference modes: ONE mapping from a mode name (`inference_mode`) to the factory that builds it."""

from __future__ import annotations

from comps.animation.backends import sadtalker, wav2lip
from comps.animation.backends.base import BackendFactory

# A new mode is one entry here, its name in settings.ModeName, and the shared networks it needs in `networks`.
BACKENDS: dict[str, BackendFactory] = {
    "wav2lip": wav2lip.plain,
    "wav2lip_gan": wav2lip.gan,
    "wav2lip+gfpgan": wav2lip.gan_with_gfpgan,
    "sadtalker": sadtalker.plain,
    "sadtalker+gfpgan": sadtalker.with_gfpgan,
}
