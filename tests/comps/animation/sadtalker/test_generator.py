"""OcclusionAwareSPADEGenerator + dense motion against generator/ (plain fill and snfix)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

from comps.animation.sadtalker.dense_motion import DenseMotion
from comps.animation.sadtalker.generator import OcclusionAwareSPADEGenerator


def test_state_dict_matches_manifest(manifest: Callable[[str], dict[str, Any]], check_manifest: Any) -> None:
    check_manifest(OcclusionAwareSPADEGenerator(), manifest("generator"))


@pytest.fixture(scope="module")
def warped(filled_generator: nn.Module, tensor: Callable[[str], torch.Tensor]) -> tuple[torch.Tensor, DenseMotion]:
    """The occlusion-weighted feature map and dense motion for the generator/ keypoints."""
    assert isinstance(filled_generator, OcclusionAwareSPADEGenerator)
    with torch.no_grad():
        return filled_generator.features(
            tensor("renderer/in_source_image_256.npy"),
            tensor("generator/in_kp_driving.npy"),
            tensor("generator/in_kp_source.npy"),
        )


def test_dense_motion_and_plain_prediction(
    filled_generator: nn.Module,
    warped: tuple[torch.Tensor, DenseMotion],
    tensor: Callable[[str], torch.Tensor],
    err: Any,
) -> None:
    feature, motion = warped
    assert err(motion.occlusion_map, tensor("generator/out_occlusion_map.npy")) < 1e-4
    assert err(motion.deformation, tensor("generator/out_deformation.npy")) < 5e-5
    with torch.no_grad():
        logits = filled_generator.decoder.logits(feature)
    expected_logits = tensor("generator/out_decoder_logits.npy")
    assert err(logits, expected_logits) <= 1e-3 * float(expected_logits.abs().max())
    diff = (torch.sigmoid(logits).double() - tensor("generator/out_prediction.npy").double()).abs().flatten()
    assert float(torch.quantile(diff, 0.999)) <= 5e-3
    assert float(diff.max()) <= 5e-2


def test_snfix_prediction(
    filled_generator: nn.Module,
    warped: tuple[torch.Tensor, DenseMotion],
    fill: ModuleType,
    tensor: Callable[[str], torch.Tensor],
    err: Any,
) -> None:
    # snfix: unit u/v, only the decoder changes; the feature map is reused.
    feature, _ = warped
    gen = filled_generator
    plain = {k: v.clone() for k, v in gen.state_dict().items() if k.endswith(("weight_u", "weight_v"))}
    try:
        gen.load_state_dict(fill.snfix(gen.state_dict()), strict=True)
        with torch.no_grad():
            sn_logits = gen.decoder.logits(feature)
    finally:
        gen.load_state_dict(plain, strict=False)  # restore the plain fill for other tests
    assert err(sn_logits, tensor("generator/out_snfix_decoder_logits.npy")) < 5e-2
    assert err(torch.sigmoid(sn_logits), tensor("generator/out_snfix_prediction.npy")) < 5e-3
