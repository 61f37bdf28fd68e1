"""The 224x224 face crop the 3DMM regressor expects, aligned on five landmarks as Deep3DFaceRecon does.

The regressor (`face3d.ReconNet`) was trained on faces placed by one rule: fit the five image
landmarks (eye centres, nose tip, mouth corners) to the same five points of the BFM mean face
with a least-squares scaled orthographic projection, scale the picture so the face has a fixed
size (`RESCALE` / fitted scale), and cut 224x224 around the fitted position. Upstream SadTalker
applies it to the source picture at render size (256 or 512) with landmarks found there; its
`[s, tx, ty]` are the full preprocess modes' extra coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

RECON_SIZE = 224
RESCALE = 102.0
# The five BFM points (x, y, z): eye centres, nose tip, mouth corners, in the image-left-first
# order a face detector reports them. Derived from the 68 points of Deep3DFaceRecon's
# `similarity_Lm3D_all.mat` (eyes: the mean of two eye corners).
LM3D_5 = np.array(
    [
        [-0.31148657, 0.29036078, 0.13377953],
        [0.30979887, 0.28972036, 0.13179526],
        [0.0032535, -0.04617932, 0.55244243],
        [-0.25216928, -0.38133916, 0.22405732],
        [0.2484662, -0.38128236, 0.22235769],
    ]
)


@dataclass(frozen=True)
class Aligned:
    """The regressor's input and where it came from.

    Attributes:
        crop: (224, 224, 3) uint8 RGB.
        scale: the picture was resized by this factor before the crop (upstream's `s`).
        center: the fitted face position (x, y) in the picture, y measured upwards from the bottom
            row (upstream's `t`).
    """

    crop: npt.NDArray[np.uint8]
    scale: float
    center: tuple[float, float]

    @property
    def params(self) -> tuple[float, float, float]:
        """`[s, tx, ty]`: the full preprocess modes' coefficients 70:73."""
        return (self.scale, self.center[0], self.center[1])


def fit_scale_translation(points: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], float]:
    """Least-squares fit of image points (5, 2; y up) to `LM3D_5` under a scaled orthographic projection.

    Solves `p = A X + b` (A: 2x3, b: 2) and returns `b` (the face centre) and the mean norm of A's rows.
    """
    n = LM3D_5.shape[0]
    design = np.zeros((2 * n, 8))
    design[0::2, 0:3] = LM3D_5
    design[0::2, 3] = 1
    design[1::2, 4:7] = LM3D_5
    design[1::2, 7] = 1
    solution, *_ = np.linalg.lstsq(design, points.reshape(-1), rcond=None)
    scale = (np.linalg.norm(solution[0:3]) + np.linalg.norm(solution[4:7])) / 2
    return np.array([solution[3], solution[7]]), float(scale)


def align_face(picture: npt.NDArray[np.uint8], landmarks: npt.NDArray[np.float32]) -> Aligned:
    """Cut the regressor's 224x224 crop out of an RGB picture given its five landmarks (x, y down, pixels).

    Parts of the crop outside the scaled picture are black, as upstream's PIL crop leaves them.

    Raises:
        ValueError: the landmarks are not five finite points spread over a face.
    """
    points = np.asarray(landmarks, np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise ValueError(f"expected five finite (x, y) landmarks, got shape {points.shape}")
    height, width = picture.shape[:2]
    flipped = points.copy()
    flipped[:, 1] = height - 1 - flipped[:, 1]
    center, fitted = fit_scale_translation(flipped)
    if not fitted > 1e-6:
        raise ValueError("the face landmarks are degenerate (all in one place)")
    scale = RESCALE / fitted
    new_w, new_h = int(width * scale), int(height * scale)
    if not 0 < new_w <= 16 * RECON_SIZE and 0 < new_h <= 16 * RECON_SIZE:
        raise ValueError(f"the face is too small or too large in the picture (scale {scale:.3g})")
    left = int(new_w / 2 - RECON_SIZE / 2 + (center[0] - width / 2) * scale)
    up = int(new_h / 2 - RECON_SIZE / 2 + (height / 2 - center[1]) * scale)
    resized = np.asarray(Image.fromarray(picture).resize((new_w, new_h), resample=Image.Resampling.BICUBIC))
    crop = np.zeros((RECON_SIZE, RECON_SIZE, 3), np.uint8)
    y0, x0 = max(0, up), max(0, left)
    y1, x1 = min(new_h, up + RECON_SIZE), min(new_w, left + RECON_SIZE)
    if y1 > y0 and x1 > x0:
        crop[y0 - up : y1 - up, x0 - left : x1 - left] = resized[y0:y1, x0:x1]
    return Aligned(crop=crop, scale=scale, center=(float(center[0]), float(center[1])))
