"""The face-render chain: semantic windows, head pose to rotation, keypoint transformation, generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from comps.animation.sadtalker.generator import OcclusionAwareSPADEGenerator
from comps.animation.sadtalker.keypoints import KPDetector
from comps.animation.sadtalker.mapping import HeadMotion, MappingNet

# Frames on each side of the target frame in the MappingNet window (27 columns in all).
SEMANTIC_RADIUS = 13
# Head-pose bins: degrees = 3 * expected bin - 99, bins 0..65, so [-99, 96].
NUM_BINS = 66
BIN_DEGREES = 3.0
BIN_OFFSET = 99.0
# Upstream converts degrees with 3.14, not pi; kept for numerical parity with the checkpoints.
PI_APPROX = 3.14


def source_window(coeffs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Return the source semantics (C, 27): 27 copies of the source row (C,)."""
    return np.repeat(np.asarray(coeffs, dtype=np.float32)[:, None], 2 * SEMANTIC_RADIUS + 1, axis=1)


def target_window(coeffs: npt.NDArray[np.float32], frame: int) -> npt.NDArray[np.float32]:
    """Return the target semantics (C, 27) for ``frame``: rows ``clamp(frame-13 .. frame+13)`` of (T, C)."""
    idx = np.clip(np.arange(frame - SEMANTIC_RADIUS, frame + SEMANTIC_RADIUS + 1), 0, coeffs.shape[0] - 1)
    return np.ascontiguousarray(coeffs[idx].T, dtype=np.float32)


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """Map angle-bin logits (bs, 66) to degrees (bs,) as the softmax expectation."""
    idx = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return (F.softmax(logits, dim=1) * idx).sum(1) * BIN_DEGREES - BIN_OFFSET


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Return ``R = P(pitch) Y(yaw) Z(roll)`` (bs, 3, 3) from angles in degrees (bs,)."""
    y, p, r = (a / 180 * PI_APPROX for a in (yaw, pitch, roll))
    one, zero = torch.ones_like(p), torch.zeros_like(p)
    pitch_m = torch.stack([one, zero, zero, zero, p.cos(), -p.sin(), zero, p.sin(), p.cos()], 1).view(-1, 3, 3)
    yaw_m = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], 1).view(-1, 3, 3)
    roll_m = torch.stack([r.cos(), -r.sin(), zero, r.sin(), r.cos(), zero, zero, zero, one], 1).view(-1, 3, 3)
    return torch.einsum("bij,bjk,bkm->bim", pitch_m, yaw_m, roll_m)


@dataclass(frozen=True, slots=True)
class PoseOverride:
    """User-given head angles in degrees (bs,) that replace the predicted ones; None keeps them."""

    yaw: torch.Tensor | None = None
    pitch: torch.Tensor | None = None
    roll: torch.Tensor | None = None


@dataclass(frozen=True, slots=True)
class TransformedKeypoints:
    """Keypoint transformation result.

    Attributes:
        degrees: (bs, 3) yaw, pitch, roll in degrees (after any override).
        rotation: (bs, 3, 3).
        keypoints: (bs, num_kp, 3) = ``R kp + (0, t_y, 0) + exp``.
    """

    degrees: torch.Tensor
    rotation: torch.Tensor
    keypoints: torch.Tensor


def transform_keypoints(
    canonical: torch.Tensor, motion: HeadMotion, override: PoseOverride | None = None
) -> TransformedKeypoints:
    """Rotate, translate (vertical only) and deform canonical keypoints (bs, num_kp, 3)."""
    yaw, pitch, roll = (bins_to_degrees(x) for x in (motion.yaw, motion.pitch, motion.roll))
    if override is not None:
        yaw = override.yaw.to(yaw) if override.yaw is not None else yaw
        pitch = override.pitch.to(pitch) if override.pitch is not None else pitch
        roll = override.roll.to(roll) if override.roll is not None else roll
    rot = rotation_matrix(yaw, pitch, roll)
    rotated = torch.einsum("bmp,bkp->bkm", rot, canonical)
    # Only the vertical translation survives: upstream zeroes t_x and t_z.
    t = motion.t * torch.tensor([0.0, 1.0, 0.0], dtype=motion.t.dtype, device=motion.t.device)
    kp = rotated + t.unsqueeze(1) + motion.exp.view(motion.exp.shape[0], -1, 3)
    return TransformedKeypoints(degrees=torch.stack([yaw, pitch, roll], 1), rotation=rot, keypoints=kp)


@dataclass(frozen=True, slots=True)
class SourceState:
    """Per-source renderer state: the image (bs, 3, S, S) and its canonical and posed keypoints."""

    image: torch.Tensor
    canonical: torch.Tensor
    keypoints: torch.Tensor


class FaceRenderer:
    """Runs make_animation's per-frame chain with already-loaded networks (all in eval mode)."""

    def __init__(
        self, *, kp_detector: KPDetector, mapping: MappingNet, generator: OcclusionAwareSPADEGenerator
    ) -> None:
        self.kp_detector = kp_detector
        self.mapping = mapping
        self.generator = generator

    def prepare(self, image: torch.Tensor, source_semantics: torch.Tensor) -> SourceState:
        """Detect keypoints of the source image (bs, 3, S, S) and pose them with semantics (bs, C, 27)."""
        canonical: torch.Tensor = self.kp_detector(image)
        posed = transform_keypoints(canonical, self.mapping(source_semantics))
        return SourceState(image=image, canonical=canonical, keypoints=posed.keypoints)

    def driving(
        self, state: SourceState, target_semantics: torch.Tensor, override: PoseOverride | None = None
    ) -> TransformedKeypoints:
        """Driving keypoints for target semantics (bs, C, 27)."""
        return transform_keypoints(state.canonical, self.mapping(target_semantics), override)

    def render(
        self, state: SourceState, target_semantics: torch.Tensor, override: PoseOverride | None = None
    ) -> torch.Tensor:
        """Render one frame per batch row: (bs, 3, S, S) in [0, 1]."""
        kp_driving = self.driving(state, target_semantics, override).keypoints
        pred: torch.Tensor = self.generator(state.image, kp_driving, state.keypoints).prediction
        return pred
