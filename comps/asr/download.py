"""`avatarchat download whisper`: fetch the configured ASR model into the model cache."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from comps.asr.backends.registry import BACKENDS
from comps.asr.settings import AsrSettings
from comps.core.settings import load_settings

logger = logging.getLogger(__name__)


def download_whisper(settings: AsrSettings | None = None) -> list[Path]:
    """Fetch the model named by `ASR_BACKEND`/`ASR_MODEL` into the cache and list its files.

    Nothing is fetched when the model is already a local path or in the cache. Offline
    (`AVATARCHAT_OFFLINE=1`) a missing model raises `WeightsMissingError` naming what was searched.
    """
    settings = settings or load_settings(AsrSettings)
    location = BACKENDS[settings.backend].locate(settings)
    logger.info("%s model %r is at %s", settings.backend, settings.model, location)
    if location.is_file():
        return [location]
    return sorted(path for path in location.rglob("*") if path.is_file() and ".cache" not in path.parts)


def weight_checks(settings: AsrSettings) -> list[Callable[[], Path]]:
    """The look-up a preflight runs: the model's file or folder (downloaded only where `settings.offline` allows)."""
    return [lambda: BACKENDS[settings.backend].locate(settings)]
