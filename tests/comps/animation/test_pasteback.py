"""The square face region: derivation from the face box, edge-replicated crops, soft-edged paste-back."""

from __future__ import annotations

import numpy as np
import pytest

from comps.animation.pasteback import PasteBack, Region, crop_square, face_region, soft_mask


def test_region_is_a_centred_square_scaled_from_the_longer_side() -> None:
    region = face_region(np.array([100, 200, 50, 130]), scale=1.5)  # y1, y2, x1, x2: 100 tall, 80 wide
    assert region == Region(y=75, x=15, side=150)
    assert region.contains(75, 15) and region.contains(224, 164) and not region.contains(225, 100)
    with pytest.raises(ValueError):
        face_region(np.array([10, 10, 0, 5]))


def test_crop_replicates_the_border_outside_the_frame() -> None:
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[:, :, 0] = np.arange(60, dtype=np.uint8)  # columns numbered
    crop = crop_square(frame, Region(y=-10, x=-10, side=20), 20)
    assert crop.shape == (20, 20, 3)
    assert (crop[:, :10, 0] == 0).all()  # left of the frame: column 0 repeated
    assert crop[0, 10:, 0].tolist() == list(range(10))


def test_soft_mask_is_one_inside_and_ramps_to_zero() -> None:
    mask = soft_mask(100, feather=0.1)[..., 0]
    assert mask.shape == (100, 100)
    assert (mask[10:90, 10:90] == 1).all()
    assert 0 < mask[0, 50] < 0.1 and mask[0, 0] <= mask[0, 50]
    assert np.allclose(mask, mask.T) and np.allclose(mask, mask[::-1])


def test_paste_changes_only_the_region_inside_the_frame() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(80, 100, 3), dtype=np.uint8)
    region = Region(y=-20, x=60, side=60)  # leaves the frame at the top and on the right
    out = PasteBack(frame, region).paste(np.full((256, 256, 3), 255, np.uint8))
    assert out.shape == frame.shape and out is not frame
    inside = np.zeros((80, 100), bool)
    inside[0:40, 60:100] = True
    assert np.array_equal(out[~inside], frame[~inside])
    assert (out[10:25, 70:90] == 255).all()  # the fully opaque middle shows the face
    assert (out[inside] >= frame[inside]).all()  # blended towards white, never past it
    with pytest.raises(ValueError):
        PasteBack(frame, Region(y=100, x=0, side=10))
