"""`avatarchat download piper` and `avatarchat download speecht5`: fetch TTS weights into the model cache."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from comps.core.settings import load_settings
from comps.tts.settings import TtsSettings
from comps.tts.weights import piper_default_voice, speecht5_model_dirs, speecht5_speakers

logger = logging.getLogger(__name__)


def download_piper() -> list[Path]:
    """The default Piper voice (`TTS_MODEL`, or en_US-lessac-medium from rhasspy/piper-voices): .onnx and .onnx.json."""
    settings = load_settings(TtsSettings)
    files = piper_default_voice(settings, offline=False)
    logger.info("Piper voice ready: %s", files.model)
    return [files.model, files.config]


def download_speecht5() -> list[Path]:
    """microsoft/speecht5_tts, microsoft/speecht5_hifigan and OPEA's `default`/`male` x-vectors."""
    settings = load_settings(TtsSettings)
    model_dir, vocoder_dir = speecht5_model_dirs(settings, offline=False)
    speakers = speecht5_speakers(settings, offline=False)
    logger.info("SpeechT5 ready: %s, %s, voices %s", model_dir, vocoder_dir, sorted(speakers))
    return [model_dir, vocoder_dir, *speakers.values()]


def weight_checks(settings: TtsSettings) -> list[Callable[[], object]]:
    """The look-ups a preflight runs for the configured backend (downloading only where `settings.offline` allows)."""
    if settings.backend == "piper":
        return [lambda: piper_default_voice(settings)]
    return [lambda: speecht5_model_dirs(settings), lambda: speecht5_speakers(settings)]
