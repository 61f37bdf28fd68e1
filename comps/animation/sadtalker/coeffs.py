"""Audio2Coeff glue: expression and pose prediction, pose smoothing, and the renderer's target coefficients."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from scipy.signal import savgol_filter

from comps.animation.sadtalker.audio2exp import ExpNet, predict_expressions
from comps.animation.sadtalker.audio2pose import Audio2Pose, predict_poses

# Savitzky-Golay smoothing of the predicted pose along time (Audio2Coeff.generate).
SAVGOL_WINDOW = 13
SAVGOL_ORDER = 2
# Semantic layout of a coefficient row: exp 0:64, angle 64:67, trans 67:70, crop params 70:73.
EXP_DIM = 64
SEMANTIC_DIM = 70
# Eye-blink bump written into the ratio sequence (5 frames).
BLINK = (0.5, 0.9, 1.0, 0.9, 0.5)

FloatArray = npt.NDArray[np.float32]


def smooth_pose(pose: FloatArray) -> FloatArray:
    """Smooth poses (..., T, 6) along time with window 13 (or the largest odd window <= T), order 2."""
    frames = pose.shape[-2]
    window = SAVGOL_WINDOW if frames >= SAVGOL_WINDOW else (frames - 1) // 2 * 2 + 1
    if window <= SAVGOL_ORDER:  # too short to fit a quadratic; upstream would fail here
        return pose.astype(np.float32)
    smoothed = savgol_filter(pose.astype(np.float64), window, SAVGOL_ORDER, axis=-2)
    return np.asarray(smoothed, dtype=np.float32)


def blink_ratio(num_frames: int, rng: np.random.Generator) -> FloatArray:
    """Draw upstream's random blink sequence (T, 1): 5-frame bumps, none for clips of <= 20 frames."""
    ratio = np.zeros((num_frames, 1), dtype=np.float32)
    if num_frames <= 20:
        return ratio
    low, high = min(10, num_frames), min(num_frames // 2, 70)
    if high <= low:  # e.g. 21 frames: upstream's draw range is empty
        return ratio
    frame = 0
    while frame < num_frames:
        start = int(rng.integers(low, high))
        if frame + start + len(BLINK) > num_frames - 1:
            break
        ratio[frame + start : frame + start + len(BLINK), 0] = BLINK
        frame += start + len(BLINK)
    return ratio


def audio_to_coeffs(
    *,
    expnet: ExpNet,
    posenet: Audio2Pose,
    indiv_mels: torch.Tensor,
    source: torch.Tensor,
    ratio: torch.Tensor,
    pose_style: int,
    z: torch.Tensor,
) -> FloatArray:
    """Predict the per-frame coefficients (T, 70) = [exp (64) | smoothed pose (6)] for one clip.

    Args:
        expnet: the expression network (eval mode).
        posenet: the pose network (eval mode).
        indiv_mels: mel windows (1, T, 1, 80, 16).
        source: the source coefficients (70,) ``[exp | angle | trans]``.
        ratio: blink ratio (1, T, 1).
        pose_style: pose style class in [0, 46).
        z: pose latent draws (draws, 1, 64), see ``audio2pose.num_latent_draws``.
    """
    frames = indiv_mels.shape[1]
    ref = source[:SEMANTIC_DIM].reshape(1, 1, SEMANTIC_DIM).expand(1, frames, SEMANTIC_DIM).to(indiv_mels)
    with torch.no_grad():
        exp = predict_expressions(expnet, indiv_mels, ref, ratio.to(indiv_mels))
        pose = predict_poses(posenet, indiv_mels, ref, pose_style, z).pose
    smoothed = smooth_pose(pose.cpu().numpy())
    joined = np.concatenate([exp.cpu().numpy().astype(np.float32), smoothed], axis=-1)
    return np.asarray(joined[0], dtype=np.float32)


def render_targets(
    coeffs: FloatArray, source: FloatArray, *, expression_scale: float, still: bool, full: bool
) -> FloatArray:
    """Build the renderer's per-frame coefficient rows from predicted coefficients (T, 70).

    Expressions are scaled; in ``full`` mode every row gets the source's crop params (70:73);
    ``still`` replaces the pose (64:) with the source's.
    """
    rows = np.array(coeffs[:, :SEMANTIC_DIM], dtype=np.float32)
    rows[:, :EXP_DIM] *= expression_scale
    if full:
        rows = np.concatenate([rows, np.repeat(source[None, SEMANTIC_DIM:73], rows.shape[0], axis=0)], axis=1)
    if still:
        rows[:, EXP_DIM:] = source[None, EXP_DIM : rows.shape[1]]
    return rows
