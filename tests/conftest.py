"""Shared test configuration: the anyio backend and paths to the shared fixtures and assets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()

# Streams that name no rate render at 25 fps in every test, on every CPU: `auto` (the product's default)
# would pick 12.5 on a slow CPU, so what a test sees would depend on the machine. The tests that need
# `auto` or `half` set them (tests/comps/animation/test_streaming.py, test_pace.py). Services the tests
# start as processes inherit it.
os.environ["ANIMATION_STREAM_RATE"] = "full"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"the shared folder is expected beside the checkout at {SHARED}"
    return SHARED


@pytest.fixture(scope="session")
def real_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The four real services on small real models, each on a free 127.0.0.1 port, for the whole session."""
    from support.stack import serve_real_services

    yield from serve_real_services(tmp_path_factory.mktemp("real-models"))


@pytest.fixture(scope="session")
def embedded_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache for the session's tests on the embedded defaults (the GGUF is dequantized into it once)."""
    return tmp_path_factory.mktemp("embedded-model-cache")
