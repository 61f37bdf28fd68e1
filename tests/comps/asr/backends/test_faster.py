from __future__ import annotations

from pathlib import Path

import pytest
from support.models import whisper_tiny_dir, word_error_rate

from comps.asr.backends.base import Audio
from comps.asr.backends.faster import FasterWhisperBackend, locate_model
from comps.asr.settings import AsrSettings


def test_real_tiny_en_transcribes_with_segments(faster_backend: FasterWhisperBackend, spoken: dict[str, Audio]) -> None:
    text, audio = next(iter(spoken.items()))
    transcript = faster_backend.transcribe(audio, language="en", prompt="Quick brown fox.", temperature=0.2)
    assert word_error_rate(text, transcript.text) <= 0.25
    assert transcript.language == "en"
    assert transcript.segments and all(s.temperature == 0.2 and s.tokens for s in transcript.segments)
    assert faster_backend.languages == frozenset({"en"})


def test_served_name_defaults_to_the_folder_name(tmp_path: Path) -> None:
    settings = AsrSettings(model=str(whisper_tiny_dir()), model_cache_dir=tmp_path, offline=True, device="cpu")
    assert FasterWhisperBackend.load(settings).model_name == whisper_tiny_dir().name


def test_unknown_model_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tiny.en"):
        locate_model(AsrSettings(model="enormous", model_cache_dir=tmp_path, offline=True))


def test_gaudi_is_refused_with_the_backend_to_use(tmp_path: Path) -> None:
    settings = AsrSettings(model=str(whisper_tiny_dir()), model_cache_dir=tmp_path, device="hpu")
    with pytest.raises(RuntimeError, match="ASR_BACKEND=transformers"):
        FasterWhisperBackend.load(settings)
