"""HEEstimator: only its key set matters (legacy strict loading); a forward smoke check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from comps.animation.sadtalker.he_estimator import HEEstimator


def test_state_dict_matches_manifest(manifest: Callable[[str], dict[str, Any]], check_manifest: Any) -> None:
    check_manifest(HEEstimator(), manifest("he_estimator"))


def test_forward_shapes() -> None:
    net = HEEstimator().eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 64, 64))
    assert out.yaw.shape == (1, 66) and out.t.shape == (1, 3) and out.exp.shape == (1, 45)
