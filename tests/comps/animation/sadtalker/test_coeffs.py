"""Audio2Coeff glue: pose smoothing, the joined coefficients, blink ratios and renderer targets."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import torch

from comps.animation.sadtalker.audio2exp import ExpNet
from comps.animation.sadtalker.audio2pose import Audio2Pose
from comps.animation.sadtalker.coeffs import audio_to_coeffs, blink_ratio, render_targets, smooth_pose


def test_savgol_matches_fixture(npy: Callable[[str], np.ndarray], err: Any) -> None:
    smoothed = smooth_pose(npy("audio2pose/out_pose_pred.npy"))
    expected = npy("audio2coeff/out_pose_pred_savgol.npy")
    assert smoothed.shape == expected.shape == (1, 41, 6)
    assert err(smoothed, expected) < 3e-5
    # Short clips use the largest odd window <= T; two frames stay as they are.
    short = np.arange(14, dtype=np.float32).reshape(1, 7, 2) ** 2
    assert smooth_pose(short).shape == short.shape
    assert np.array_equal(smooth_pose(short[:, :2]), short[:, :2])


def test_audio_to_coeffs_matches_fixture(fill: ModuleType, tensor: Callable[[str], torch.Tensor], err: Any) -> None:
    expnet = fill.fill_module(ExpNet())
    posenet = fill.fill_module(Audio2Pose())
    coeffs = audio_to_coeffs(
        expnet=expnet,
        posenet=posenet,
        indiv_mels=tensor("audio/out_indiv_mels.npy"),
        source=tensor("audio2pose/in_ref.npy")[0, 0],
        ratio=tensor("audio2exp/in_ratio_gt.npy"),
        pose_style=7,
        z=tensor("audio2pose/in_z.npy"),
    )
    expected = tensor("audio2coeff/out_coeffs_pred.npy")
    assert coeffs.shape == (41, 70)
    assert err(coeffs, expected) < 3e-3
    assert err(coeffs[:, 64:], expected[:, 64:]) < 3e-5


def test_blink_ratio_rules() -> None:
    assert not blink_ratio(20, np.random.default_rng(0)).any()
    assert not blink_ratio(21, np.random.default_rng(0)).any()
    ratio = blink_ratio(200, np.random.default_rng(1))
    assert ratio.shape == (200, 1)
    values = ratio[:, 0]
    starts = [i for i in range(196) if values[i] == 0.5 and values[i + 2] == 1.0]
    assert starts, "a long clip gets at least one blink"
    for s in starts:
        assert np.allclose(values[s : s + 5], [0.5, 0.9, 1.0, 0.9, 0.5])
    assert np.array_equal(ratio, blink_ratio(200, np.random.default_rng(1)))


def test_render_targets(npy: Callable[[str], np.ndarray]) -> None:
    source = npy("coeffs/in_source_coeff73.npy")[0]
    coeffs = npy("renderer/in_generated_3dmm.npy")
    scaled = render_targets(coeffs, source, expression_scale=2.0, still=False, full=False)
    assert scaled.shape == (41, 70)
    assert np.allclose(scaled[:, :64], 2 * coeffs[:, :64]) and np.array_equal(scaled[:, 64:], coeffs[:, 64:])
    still = render_targets(coeffs, source, expression_scale=1.0, still=True, full=False)
    assert np.array_equal(still[:, 64:], np.repeat(source[None, 64:70], 41, axis=0))
    full = render_targets(coeffs, source, expression_scale=1.0, still=False, full=True)
    assert full.shape == (41, 73) and np.array_equal(full[:, 70:], np.repeat(source[None, 70:], 41, axis=0))
    full_still = render_targets(coeffs, source, expression_scale=1.0, still=True, full=True)
    assert np.array_equal(full_still[:, 64:], np.repeat(source[None, 64:], 41, axis=0))
