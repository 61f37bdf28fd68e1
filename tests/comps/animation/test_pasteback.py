"""The square face region: derivation from five landmarks, edge-replicated crops, soft-edged paste-back."""

from __future__ import annotations

import numpy as np
import pytest

from comps.animation.pasteback import PasteBack, Region, crop_square, landmark_region, soft_mask


def test_region_is_the_bounding_square_of_upstreams_ffhq_quad() -> None:
    # Upright face: eyes 40 apart at y=100, mouth corners 50 below them. The quad's half side is
    # max(2 * 40, 1.8 * 50) = 90, centred 5 below the eyes' midpoint.
    upright = np.array([[80, 100], [120, 100], [100, 125], [85, 150], [115, 150]], np.float32)
    assert landmark_region(upright) == Region(y=15, x=10, side=180)
    # Rolled 30°: the same quad turned, so its axis-aligned bounding square is (cos + sin) times larger.
    angle = np.deg2rad(30.0)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([100.0, 105.0])
    rolled = ((upright - centre) @ turn.T + centre).astype(np.float32)
    region = landmark_region(rolled)
    side = 180 * (np.cos(angle) + np.sin(angle))
    assert abs(region.side - side) <= 1
    assert abs(region.y + region.side / 2 - 105) <= 1 and abs(region.x + region.side / 2 - 100) <= 1
    region = Region(y=75, x=15, side=150)
    assert region.contains(75, 15) and region.contains(224, 164) and not region.contains(225, 100)
    with pytest.raises(ValueError):
        landmark_region(np.full((5, 2), 7, np.float32))


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
