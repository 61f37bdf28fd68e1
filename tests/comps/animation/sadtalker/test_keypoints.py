"""KPDetector against its manifest and the canonical keypoints at 256 and 512."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from comps.animation.sadtalker.keypoints import KPDetector, gaussian_kernel


def wave(shape: tuple[int, ...], a: float, b: float, f: float, ph: float = 0.0) -> np.ndarray:
    k = np.arange(int(np.prod(shape)), dtype=np.float64)
    return (a + b * np.sin(f * k + ph)).reshape(shape).astype(np.float32)


def test_state_dict_matches_manifest(manifest: Callable[[str], dict[str, Any]], check_manifest: Any) -> None:
    net = KPDetector()
    check_manifest(net, manifest("kp_extractor"))
    assert net.state_dict()["down.weight"].shape == (3, 1, 13, 13)
    assert abs(float(gaussian_kernel(1, 0.25).sum()) - 1) < 1e-6


def test_canonical_keypoints_256(
    filled_kp_detector: nn.Module, tensor: Callable[[str], torch.Tensor], err: Any
) -> None:
    # The fill overwrites the anti-alias buffer; the loaded tensor (not a rebuilt one) must be used.
    assert not torch.allclose(filled_kp_detector.state_dict()["down.weight"], gaussian_kernel(3, 0.25))
    with torch.no_grad():
        kp = filled_kp_detector(tensor("renderer/in_source_image_256.npy"))
    assert kp.shape == (1, 15, 3)
    assert err(kp, tensor("renderer/out_kp_canonical.npy")) < 1e-5


def test_canonical_keypoints_512(
    filled_kp_detector: nn.Module, fixture_dir: Path, tensor: Callable[[str], torch.Tensor], err: Any
) -> None:
    image = wave((1, 3, 512, 512), 0.5, 0.5, 0.013)
    index = json.loads((fixture_dir / "index.json").read_text())["files"]
    assert (
        hashlib.sha256(image.tobytes()).hexdigest()
        == index["renderer512/in_source_image_512 [not stored]"]["sha256_float32_bytes"]
    )
    with torch.no_grad():
        kp = filled_kp_detector(torch.from_numpy(image))
    assert err(kp, tensor("renderer512/out_kp_canonical.npy")) < 1e-5
