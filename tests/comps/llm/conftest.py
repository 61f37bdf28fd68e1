"""Fixtures for the LLM tests: the tiny chat model on disk, loaded once, and services built on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.tiny_llm import build_tiny_llm

from comps.core.device import resolve_device
from comps.core.limits import InferenceQueue
from comps.llm.backends.generate import LocalModel
from comps.llm.backends.transformers import TransformersBackend
from comps.llm.settings import LlmSettings


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture(scope="session")
def local_model(tiny_llm_dir: Path) -> LocalModel:
    return LocalModel.load(
        tiny_llm_dir,
        device=resolve_device("cpu"),
        dtype="auto",
        trust_remote_code=False,
        max_model_len=None,
        default_max_tokens=8,
    )


@pytest.fixture
def llm_settings(tiny_llm_dir: Path, tmp_path: Path) -> LlmSettings:
    return LlmSettings(model_id=str(tiny_llm_dir), device="cpu", model_cache_dir=tmp_path, offline=True)


@pytest.fixture
def make_backend(local_model: LocalModel) -> Callable[..., TransformersBackend]:
    """A backend over the shared loaded model with its own queue (queues belong to one event loop)."""

    def make(*, concurrency: int = 2, max_waiting: int = 4, name: str = "tiny-llm") -> TransformersBackend:
        queue = InferenceQueue(concurrency=concurrency, max_waiting=max_waiting)
        return TransformersBackend(model=local_model, name=name, queue=queue)

    return make
