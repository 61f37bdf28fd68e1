"""MappingNet (coeff_nc 70 and 73) against the manifests and golden outputs."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import torch

from comps.animation.sadtalker.mapping import MappingNet

CASES = [("mapping", 70), ("mapping_full", 73)]


@pytest.mark.parametrize(("name", "coeff_nc"), CASES)
def test_state_dict_matches_manifest(
    name: str, coeff_nc: int, manifest: Callable[[str], dict[str, Any]], check_manifest: Any
) -> None:
    check_manifest(MappingNet(coeff_nc=coeff_nc), manifest(name))


@pytest.mark.parametrize(("name", "coeff_nc"), CASES)
def test_forward_matches_fixture(
    name: str, coeff_nc: int, fill: ModuleType, tensor: Callable[[str], torch.Tensor], err: Any
) -> None:
    net = fill.fill_module(MappingNet(coeff_nc=coeff_nc))
    with torch.no_grad():
        out = net(tensor(f"{name}/in_semantics.npy"))
    for field in ("yaw", "pitch", "roll", "t", "exp"):
        expected = tensor(f"{name}/out_{field}.npy")
        got = getattr(out, field)
        assert got.shape == expected.shape, field
        assert err(got, expected) < 1e-5, field
