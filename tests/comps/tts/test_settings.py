"""TTS settings: defaults, the TTS_ prefix, OPEA's port name, strict values."""

from __future__ import annotations

import pytest

from comps.core.settings import SettingsError, load_settings
from comps.tts.settings import TtsSettings


def test_defaults_are_the_opea_port_and_the_fast_cpu_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TTS_PORT", "SPEECHT5_PORT", "TTS_BACKEND", "TTS_MODEL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(TtsSettings)
    assert settings.port == 7055
    assert settings.backend == "piper"
    assert settings.voice == "default"
    assert settings.default_response_format == "wav"
    assert settings.output_sample_rate == 24_000


def test_environment_with_prefix_and_opea_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHT5_PORT", "7077")
    monkeypatch.setenv("TTS_BACKEND", "speecht5")
    monkeypatch.setenv("TTS_VOICES_DIR", "/voices")
    monkeypatch.setenv("TTS_CHUNK_PAUSE_MS", "0")
    settings = load_settings(TtsSettings)
    assert settings.port == 7077
    assert settings.backend == "speecht5"
    assert str(settings.voices_dir) == "/voices"
    assert settings.chunk_pause_ms == 0
    monkeypatch.setenv("TTS_PORT", "7088")  # ours wins over OPEA's
    assert load_settings(TtsSettings).port == 7088


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TTS_BACKEND", "festival"), ("TTS_DEFAULT_RESPONSE_FORMAT", "aac"), ("TTS_CHUNK_CHARS", "3")],
)
def test_bad_values_fail_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings(TtsSettings)
