"""ExpNet (audio2exp) and its chunked driver against the golden outputs."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch

from comps.animation.sadtalker.audio2exp import ExpNet, predict_expressions


def test_state_dict_matches_manifest(manifest: Callable[[str], dict[str, Any]], check_manifest: Any) -> None:
    check_manifest(ExpNet(), manifest("audio2exp"))


def test_chunk_and_driver_match_fixture(fill: ModuleType, tensor: Callable[[str], torch.Tensor], err: Any) -> None:
    net = fill.fill_module(ExpNet())
    mels = tensor("audio/out_indiv_mels.npy")
    ref = tensor("audio2exp/in_ref.npy")
    ratio = tensor("audio2exp/in_ratio_gt.npy")
    with torch.no_grad():
        chunk0 = net(mels[:, :10].reshape(-1, 1, 80, 16), ref[:, :10, :64], ratio[:, :10])
        full = predict_expressions(net, mels, ref, ratio)
    assert chunk0.shape == (1, 10, 64)
    assert err(chunk0, tensor("audio2exp/out_chunk0.npy")) < 3e-3
    assert full.shape == (1, 41, 64)
    assert err(full, tensor("audio2exp/out_exp_coeff_pred.npy")) < 3e-3
