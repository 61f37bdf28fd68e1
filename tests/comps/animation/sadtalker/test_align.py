"""The regressor's 224x224 crop: the five-point fit to the BFM template and where the crop lands."""

from __future__ import annotations

import numpy as np
import pytest

from comps.animation.sadtalker.align import LM3D_5, RECON_SIZE, RESCALE, align_face, fit_scale_translation


def projected(scale: float, centre: tuple[float, float], height: int) -> np.ndarray:
    """The template seen frontally: x, y scaled and shifted, given in image pixels (y down)."""
    points = LM3D_5[:, :2] * scale + np.array(centre)
    points[:, 1] = height - 1 - points[:, 1]
    return points.astype(np.float32)


def test_fit_recovers_scale_and_centre_of_a_frontal_face() -> None:
    up = LM3D_5[:, :2] * 80.0 + np.array([120.0, 140.0])
    centre, scale = fit_scale_translation(up)
    # A frontal projection uses z with weight 0: the fit is exact.
    assert scale == pytest.approx(80.0, rel=1e-9)
    assert centre == pytest.approx([120.0, 140.0], abs=1e-9)


def test_crop_centres_the_face_at_the_fixed_size() -> None:
    size = 256
    picture = np.zeros((size, size, 3), np.uint8)
    picture[:, :, 0] = np.arange(size, dtype=np.uint8)[None, :]  # red = x
    picture[:, :, 1] = np.arange(size, dtype=np.uint8)[:, None]  # green = y
    landmarks = projected(90.0, (130.0, 120.0), size)
    aligned = align_face(picture, landmarks)
    assert aligned.crop.shape == (RECON_SIZE, RECON_SIZE, 3) and aligned.crop.dtype == np.uint8
    assert aligned.scale == pytest.approx(RESCALE / 90.0)
    assert aligned.params == pytest.approx((RESCALE / 90.0, 130.0, 120.0))
    # The fitted centre (x 130, y 120 from the bottom row, i.e. row 135) sits at the crop's centre.
    mid = aligned.crop[RECON_SIZE // 2, RECON_SIZE // 2].astype(float)
    assert mid[0] == pytest.approx(130, abs=2) and mid[1] == pytest.approx(size - 1 - 120, abs=2)
    # One crop pixel is 1/scale picture pixels.
    step = aligned.crop[RECON_SIZE // 2, RECON_SIZE // 2 + 50, 0] - aligned.crop[RECON_SIZE // 2, RECON_SIZE // 2, 0]
    assert step == pytest.approx(50 / aligned.scale, abs=2)


def test_crop_outside_the_picture_is_black() -> None:
    picture = np.full((256, 256, 3), 200, np.uint8)
    aligned = align_face(picture, projected(60.0, (20.0, 128.0), 256))  # face at the left edge
    assert (aligned.crop[:, :20] == 0).all()
    assert (aligned.crop[:, -20:] == 200).all()


@pytest.mark.parametrize(
    "landmarks",
    [np.zeros((4, 2), np.float32), np.full((5, 2), np.nan, np.float32), np.full((5, 2), 100.0, np.float32)],
)
def test_bad_landmarks_are_refused(landmarks: np.ndarray) -> None:
    with pytest.raises(ValueError):
        align_face(np.zeros((256, 256, 3), np.uint8), landmarks)
