"""Fixtures for the SadTalker tests: the shared golden files and the deterministic weight fill."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[4]
FIXTURES = (REPO / ".." / "shared" / "fixtures" / "sadtalker").resolve()


def _load_fill() -> ModuleType:
    # Tests run with --import-mode=importlib and no __init__.py, so load the helper by path.
    spec = importlib.util.spec_from_file_location("sadtalker_test_fill", Path(__file__).with_name("fill.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FILL = _load_fill()


@pytest.fixture(autouse=True)
def _few_threads(two_threads: None) -> None:
    """Every network test here runs on 2 threads (see the parent conftest)."""


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    assert FIXTURES.is_dir(), f"SadTalker fixtures expected at {FIXTURES}"
    return FIXTURES


@pytest.fixture(scope="session")
def npy(fixture_dir: Path) -> Callable[[str], np.ndarray]:
    def load(rel: str) -> np.ndarray:
        return np.load(fixture_dir / rel)

    return load


@pytest.fixture(scope="session")
def tensor(npy: Callable[[str], np.ndarray]) -> Callable[[str], torch.Tensor]:
    def load(rel: str) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(npy(rel)))

    return load


@pytest.fixture(scope="session")
def manifest(fixture_dir: Path) -> Callable[[str], dict[str, Any]]:
    def load(network: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((fixture_dir / f"manifest_{network}.json").read_text())
        return data

    return load


@pytest.fixture(scope="session")
def fill() -> ModuleType:
    """The fill helper module (``fill_module``, ``filled_state_dict``, ``snfix``)."""
    return FILL


def assert_matches_manifest(module: nn.Module, manifest: dict[str, Any]) -> None:
    """Assert that the state dict has the manifest's keys (in order), shapes, dtypes and kinds."""
    state = module.state_dict()
    expected = manifest["keys"]
    assert list(state) == list(expected)
    params = {name for name, _ in module.named_parameters()}
    for name, spec in expected.items():
        assert list(state[name].shape) == spec["shape"], name
        assert str(state[name].dtype).removeprefix("torch.") == spec["dtype"], name
        assert ("parameter" if name in params else "buffer") == spec["kind"], name
    assert sum(p.numel() for p in module.parameters()) == manifest["num_parameters"]
    assert len(state) == manifest["num_state_dict_keys"]


@pytest.fixture(scope="session")
def check_manifest() -> Callable[[nn.Module, dict[str, Any]], None]:
    return assert_matches_manifest


def max_abs(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


@pytest.fixture(scope="session")
def err() -> Callable[[Any, Any], float]:
    return max_abs


@pytest.fixture(scope="session")
def filled_generator() -> nn.Module:
    """The generator (~100M parameters) with the plain fill; built once per session."""
    from comps.animation.sadtalker.generator import OcclusionAwareSPADEGenerator

    return FILL.fill_module(OcclusionAwareSPADEGenerator())


@pytest.fixture(scope="session")
def filled_kp_detector() -> nn.Module:
    from comps.animation.sadtalker.keypoints import KPDetector

    return FILL.fill_module(KPDetector())
