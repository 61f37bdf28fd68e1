"""`avatarchat download llm`: a local folder as is, offline a clear error naming the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from comps.core.weights import WeightsMissingError
from comps.llm.download import download_llm
from comps.llm.settings import LlmSettings


def test_local_folder_is_used_as_is(tiny_llm_dir: Path, tmp_path: Path) -> None:
    settings = LlmSettings(model_id=str(tiny_llm_dir), model_cache_dir=tmp_path, offline=True)
    assert download_llm(settings) == [tiny_llm_dir]


def test_offline_without_the_model_names_it_and_the_command(tmp_path: Path) -> None:
    settings = LlmSettings(model_id="Qwen/Qwen2.5-0.5B-Instruct", model_cache_dir=tmp_path, offline=True)
    with pytest.raises(WeightsMissingError) as caught:
        download_llm(settings)
    message = str(caught.value)
    assert "Qwen/Qwen2.5-0.5B-Instruct" in message
    assert "avatarchat download llm" in message
    assert str(tmp_path / "llm" / "Qwen--Qwen2.5-0.5B-Instruct") in message


def test_cached_snapshot_is_found(tmp_path: Path) -> None:
    cached = tmp_path / "llm" / "org--model"
    cached.mkdir(parents=True)
    (cached / "config.json").write_text("{}")
    settings = LlmSettings(model_id="org/model", model_cache_dir=tmp_path, offline=True)
    assert download_llm(settings) == [cached]


def test_openai_backend_downloads_nothing(tmp_path: Path) -> None:
    settings = LlmSettings(backend="openai", endpoint="http://vllm:8000", model_cache_dir=tmp_path)
    assert download_llm(settings) == []
