"""The make_animation chain at 256 (renderer/) and the renderer maths on their own."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from comps.animation.sadtalker.mapping import MappingNet
from comps.animation.sadtalker.renderer import (
    FaceRenderer,
    PoseOverride,
    bins_to_degrees,
    rotation_matrix,
    source_window,
    target_window,
)

FRAME = 5  # index.json: renderer_frame_index


def test_semantic_windows(npy: Callable[[str], np.ndarray]) -> None:
    generated = npy("renderer/in_generated_3dmm.npy")
    assert np.array_equal(target_window(generated, FRAME)[None, None], npy("renderer/in_target_semantics.npy"))
    source = npy("coeffs/in_source_coeff73.npy")[0, :70]
    assert np.array_equal(source_window(source)[None], npy("renderer/in_source_semantics.npy"))
    last = target_window(generated, 40)
    assert np.array_equal(last[:, 13:], np.repeat(generated[40][:, None], 14, axis=1))


def test_angle_maths() -> None:
    flat = torch.zeros(1, 66)
    assert math.isclose(float(bins_to_degrees(flat)), 3 * 32.5 - 99, abs_tol=1e-4)
    peaked = torch.full((1, 66), -1e4)
    peaked[0, 0] = 0
    assert math.isclose(float(bins_to_degrees(peaked)), -99.0, abs_tol=1e-4)
    deg = torch.tensor([30.0])
    zero = torch.zeros(1)
    rad = 30 / 180 * 3.14  # 3.14, not pi
    yaw_only = rotation_matrix(deg, zero, zero)[0]
    assert torch.allclose(
        yaw_only, torch.tensor([[math.cos(rad), 0, math.sin(rad)], [0, 1, 0], [-math.sin(rad), 0, math.cos(rad)]])
    )
    r = rotation_matrix(torch.tensor([10.0]), torch.tensor([-5.0]), torch.tensor([3.0]))
    p = rotation_matrix(zero, torch.tensor([-5.0]), zero)
    y = rotation_matrix(torch.tensor([10.0]), zero, zero)
    z = rotation_matrix(zero, zero, torch.tensor([3.0]))
    assert torch.allclose(r, p @ y @ z, atol=1e-6)


def test_chain_matches_fixture(
    filled_generator: nn.Module,
    filled_kp_detector: nn.Module,
    fill: ModuleType,
    tensor: Callable[[str], torch.Tensor],
    err: Any,
) -> None:
    mapping = fill.fill_module(MappingNet(coeff_nc=70))
    renderer = FaceRenderer(kp_detector=filled_kp_detector, mapping=mapping, generator=filled_generator)  # type: ignore[arg-type]
    image = tensor("renderer/in_source_image_256.npy")
    src_sem = tensor("renderer/in_source_semantics.npy")
    tgt_sem = tensor("renderer/in_target_semantics.npy")[:, 0]
    with torch.no_grad():
        state = renderer.prepare(image, src_sem)
        he_source, he_driving = mapping(src_sem), mapping(tgt_sem)
        from comps.animation.sadtalker.renderer import transform_keypoints

        src = transform_keypoints(state.canonical, he_source)
        drv = renderer.driving(state, tgt_sem)
        override = PoseOverride(yaw=torch.tensor([10.0]), pitch=torch.tensor([-5.0]), roll=torch.tensor([3.0]))
        drv_override = renderer.driving(state, tgt_sem, override)
        out = filled_generator(image, drv.keypoints, state.keypoints)
    assert err(state.canonical, tensor("renderer/out_kp_canonical.npy")) < 1e-5
    for name, he in (("source", he_source), ("driving", he_driving)):
        for field in ("yaw", "pitch", "roll", "t", "exp"):
            assert err(getattr(he, field), tensor(f"renderer/out_he_{name}_{field}.npy")) < 1e-5, (name, field)
    assert err(src.degrees, tensor("renderer/out_source_degrees_yaw_pitch_roll.npy")) < 2e-4
    assert err(drv.degrees, tensor("renderer/out_driving_degrees_yaw_pitch_roll.npy")) < 2e-4
    assert err(src.rotation, tensor("renderer/out_source_rotation.npy")) < 5e-6
    assert err(drv.rotation, tensor("renderer/out_driving_rotation.npy")) < 5e-6
    assert err(state.keypoints, tensor("renderer/out_kp_source.npy")) < 1e-5
    assert err(drv.keypoints, tensor("renderer/out_kp_driving.npy")) < 1e-5
    assert err(drv_override.keypoints, tensor("renderer/out_kp_driving_override.npy")) < 1e-5
    assert torch.allclose(drv_override.degrees, torch.tensor([[10.0, -5.0, 3.0]]))
    assert err(out.motion.occlusion_map, tensor("renderer/out_occlusion_map.npy")) < 3e-4
    diff = (out.prediction.double() - tensor("renderer/out_prediction.npy").double()).abs().flatten()
    assert float(torch.quantile(diff, 0.999)) <= 5e-3
    assert float(diff.max()) <= 5e-2
