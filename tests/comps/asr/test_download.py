from __future__ import annotations

from pathlib import Path

import pytest
from support.models import whisper_tiny_dir

from comps.asr.download import download_whisper
from comps.asr.settings import AsrSettings
from comps.core.weights import WeightsMissingError


def test_local_model_folder_lists_its_files(tmp_path: Path) -> None:
    settings = AsrSettings(model=str(whisper_tiny_dir()), model_cache_dir=tmp_path, offline=True)
    files = download_whisper(settings)
    assert {path.name for path in files} >= {"model.bin", "config.json", "tokenizer.json"}
    assert list(tmp_path.iterdir()) == []  # nothing copied


def test_cached_snapshot_is_found_without_network(tmp_path: Path) -> None:
    cached = tmp_path / "whisper" / "Systran--faster-whisper-tiny.en"
    cached.mkdir(parents=True)
    (cached / "model.bin").write_bytes((whisper_tiny_dir() / "config.json").read_bytes())
    settings = AsrSettings(model="tiny.en", model_cache_dir=tmp_path, offline=True)
    assert download_whisper(settings) == [cached / "model.bin"]


@pytest.mark.parametrize(("backend", "source"), [
    ("faster-whisper", "Systran/faster-whisper-small"),
    ("openai-whisper", "openaipublic.azureedge.net"),
    ("transformers", "openai/whisper-small"),
])  # fmt: skip
def test_offline_without_weights_is_a_clear_error(tmp_path: Path, backend: str, source: str) -> None:
    settings = AsrSettings(backend=backend, model="small", model_cache_dir=tmp_path, offline=True)  # type: ignore[arg-type]
    with pytest.raises(WeightsMissingError) as missing:
        download_whisper(settings)
    message = str(missing.value)
    assert "offline" in message and source in message and str(tmp_path) in message
    assert "avatarchat download whisper" in message


def test_environment_is_read_when_no_settings_are_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASR_MODEL", str(whisper_tiny_dir()))
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    assert any(path.name == "model.bin" for path in download_whisper())
