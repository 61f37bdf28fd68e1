"""ReconNet (face_3drecon) against its manifest and golden output."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch

from comps.animation.sadtalker.face3d import ReconNet, semantic_coeffs


def test_state_dict_matches_manifest(manifest: Callable[[str], dict[str, Any]], check_manifest: Any) -> None:
    check_manifest(ReconNet(), manifest("face_3drecon"))


def test_forward_matches_fixture(fill: ModuleType, tensor: Callable[[str], torch.Tensor], err: Any) -> None:
    net = fill.fill_module(ReconNet())
    with torch.no_grad():
        out = net(tensor("face_3drecon/in_image.npy"))
    expected = tensor("face_3drecon/out_coeffs.npy")
    assert out.shape == (1, 257)
    assert err(out, expected) < 1e-6
    sem = semantic_coeffs(out)
    assert torch.equal(sem[:, :64], out[:, 80:144])
    assert torch.equal(sem[:, 64:67], out[:, 224:227])
    assert torch.equal(sem[:, 67:70], out[:, 254:257])
