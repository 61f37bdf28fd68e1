"""Weight resolution never falls back: a missing file or folder is an error naming it and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from support.models import piper_voice_paths

from comps.core.weights import WeightsMissingError
from comps.tts.download import download_piper
from comps.tts.settings import TtsSettings
from comps.tts.weights import PIPER_SPECS, PIPER_VOICE, piper_default_voice, speecht5_model_dirs, speecht5_speakers


def test_piper_voice_by_explicit_path(tmp_path: Path) -> None:
    paths = piper_voice_paths()
    files = piper_default_voice(TtsSettings(model=str(paths.model), model_cache_dir=tmp_path, offline=True))
    assert (files.model, files.config) == (paths.model, paths.config)


def test_piper_voice_without_its_config_is_named(tmp_path: Path) -> None:
    shutil.copy(piper_voice_paths().model, tmp_path / "lonely.onnx")
    with pytest.raises(WeightsMissingError, match=r"lonely\.onnx\.json"):
        piper_default_voice(TtsSettings(model=str(tmp_path / "lonely.onnx"), model_cache_dir=tmp_path, offline=True))


def test_offline_default_voice_missing_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError, match=r"en_US-lessac-medium\.onnx.*avatarchat download piper"):
        piper_default_voice(TtsSettings(model=PIPER_VOICE, model_cache_dir=tmp_path, offline=True))


def test_unset_the_voice_is_the_embedded_joe(tmp_path: Path) -> None:
    paths = piper_voice_paths()
    files = piper_default_voice(TtsSettings(model_cache_dir=tmp_path, offline=True))
    assert (files.model, files.config) == (paths.model, paths.config)


def test_lessac_found_in_the_cache(tmp_path: Path) -> None:
    paths = piper_voice_paths()
    for spec, source in zip(PIPER_SPECS, (paths.model, paths.config), strict=True):
        spec.cache_path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, spec.cache_path(tmp_path))
    files = piper_default_voice(TtsSettings(model=PIPER_VOICE, model_cache_dir=tmp_path, offline=True))
    assert files.model == PIPER_SPECS[0].cache_path(tmp_path)


def test_download_piper_returns_the_files_it_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = piper_voice_paths()
    monkeypatch.setenv("TTS_MODEL", str(paths.model))
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    assert download_piper() == [paths.model, paths.config]


def test_a_missing_speecht5_folder_never_falls_back_to_the_default_model(tmp_path: Path) -> None:
    cached = tmp_path / "speecht5" / "microsoft--speecht5_tts"
    cached.mkdir(parents=True)
    (cached / "config.json").write_text("{}")
    settings = TtsSettings(backend="speecht5", model=str(tmp_path / "mine"), model_cache_dir=tmp_path, offline=True)
    with pytest.raises(WeightsMissingError, match=r"mine does not exist"):
        speecht5_model_dirs(settings)


def test_offline_speecht5_names_the_model_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError, match=r"microsoft/speecht5_tts.*avatarchat download speecht5"):
        speecht5_model_dirs(TtsSettings(backend="speecht5", model_cache_dir=tmp_path, offline=True))


def test_speakers_come_from_the_voices_dir_first_and_are_never_invented(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    np.save(voices / "default.npy", np.zeros(512, dtype=np.float32))
    settings = TtsSettings(voices_dir=voices, model_cache_dir=tmp_path / "cache", offline=True)
    # "male" is in neither place: an error naming OPEA's file, not a made-up embedding.
    with pytest.raises(WeightsMissingError, match=r"spk_embed_male\.pt.*avatarchat download speecht5"):
        speecht5_speakers(settings)
    np.save(voices / "male.npy", np.zeros(512, dtype=np.float32))
    assert speecht5_speakers(settings) == {"default": voices / "default.npy", "male": voices / "male.npy"}
