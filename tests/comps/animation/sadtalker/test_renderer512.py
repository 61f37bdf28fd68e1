"""The generator at 512 (renderer512/): same weights, 128x128 feature maps.

Slow on CPU: one forward takes 1-4 minutes on 2 shared cores. The fixtures have no float64
reference at 512 and the README says to use the 256 limits. Those hold for the occlusion map, the
99.9th percentile of the prediction and the decoder logits (1e-3 of their largest magnitude),
which are checked here. They cannot hold for the prediction's maximum (0.05 at 256): a float64
run of this generator (same float32 weights and inputs; conv3d evaluated as a sum of conv2d over
depth slices, since PyTorch's float64 conv3d on CPU asks for 80 GB here) differs from the
fixture by up to 0.227 (8 pixels above 0.05, 99.9th percentile 2.5e-3): at 512 the plain-fill
logits reach +-8300 and a few pixels whose logit is near 0 carry float32 noise of about 0.3
through the sigmoid's steepest part. Our float32 prediction is within 0.076 of the fixture,
closer than the exact computation is. The plain fill's logits are recovered from the fixture's
unsaturated pixels (`logit = log(p / (1 - p))`) and checked with the README's logit rule instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from comps.animation.sadtalker.dense_motion import DenseMotion
from comps.animation.sadtalker.generator import OcclusionAwareSPADEGenerator

pytestmark = pytest.mark.slow


def wave(shape: tuple[int, ...], a: float, b: float, f: float) -> np.ndarray:
    k = np.arange(int(np.prod(shape)), dtype=np.float64)
    return (a + b * np.sin(f * k)).reshape(shape).astype(np.float32)


@pytest.fixture(scope="module")
def run512(filled_generator: nn.Module, tensor: Callable[[str], torch.Tensor]) -> tuple[torch.Tensor, DenseMotion]:
    """The decoder logits (1, 3, 512, 512) and the dense motion for the generator/ keypoints at 512."""
    assert isinstance(filled_generator, OcclusionAwareSPADEGenerator)
    image = torch.from_numpy(wave((1, 3, 512, 512), 0.5, 0.5, 0.013))
    with torch.no_grad():
        feature, motion = filled_generator.features(
            image, tensor("generator/in_kp_driving.npy"), tensor("generator/in_kp_source.npy")
        )
        logits = filled_generator.decoder.logits(feature)
    return logits, motion


@pytest.fixture(scope="module")
def expected512(tensor: Callable[[str], torch.Tensor]) -> torch.Tensor:
    return torch.cat(
        [
            tensor("renderer512/out_gen_prediction_rows000_255.npy"),
            tensor("renderer512/out_gen_prediction_rows256_511.npy"),
        ],
        dim=2,
    ).double()


def test_occlusion_and_bulk_of_prediction(
    run512: tuple[torch.Tensor, DenseMotion], expected512: torch.Tensor, tensor: Callable[[str], torch.Tensor], err: Any
) -> None:
    logits, motion = run512
    assert err(motion.occlusion_map, tensor("renderer512/out_gen_occlusion_map.npy")) < 1e-4
    diff = (torch.sigmoid(logits).double() - expected512).abs().flatten()
    assert float(torch.quantile(diff, 0.999)) <= 5e-3


def test_decoder_logits_within_the_readme_rule(
    run512: tuple[torch.Tensor, DenseMotion], expected512: torch.Tensor
) -> None:
    logits = run512[0].double()
    largest = float(logits.abs().max())
    assert largest > 1000  # the plain fill's decoder is in its saturating regime
    unsaturated = (expected512 > 1e-4) & (expected512 < 1 - 1e-4)
    assert float(unsaturated.double().mean()) > 0.5  # most pixels carry a recoverable logit
    recovered = torch.logit(expected512[unsaturated])
    assert float((logits[unsaturated] - recovered).abs().max()) <= 1e-3 * largest
