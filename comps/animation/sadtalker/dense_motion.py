"""Dense motion network: keypoints to a 3-D deformation field and an occlusion map."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from comps.animation.sadtalker.blocks import BN_EPS, Hourglass, kp_to_gaussian, make_coordinate_grid

# Keypoint Gaussian variance in normalised grid units (facevid2vid's ``kp_variance``).
KP_VARIANCE = 0.01
# Mask weights below this are zeroed (without renormalising), as upstream does.
MASK_CUTOFF = 1e-3


@dataclass(frozen=True, slots=True)
class DenseMotion:
    """Dense-motion outputs.

    Attributes:
        mask: softmax weights (bs, num_kp + 1, d, h, w) before the cut-off.
        deformation: sampling grid (bs, d, h, w, 3) into the source feature volume.
        occlusion_map: (bs, 1, h, w) in [0, 1].
    """

    mask: torch.Tensor
    deformation: torch.Tensor
    occlusion_map: torch.Tensor


class DenseMotionNetwork(nn.Module):
    """Predicts how to warp the source feature volume to the driving pose."""

    def __init__(
        self,
        *,
        block_expansion: int = 32,
        num_blocks: int = 5,
        max_features: int = 1024,
        num_kp: int = 15,
        feature_channel: int = 32,
        reshape_depth: int = 16,
        compress: int = 4,
    ) -> None:
        super().__init__()
        self.hourglass = Hourglass(
            expansion=block_expansion,
            cin=(num_kp + 1) * (compress + 1),
            num_blocks=num_blocks,
            max_features=max_features,
        )
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channel, compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(compress, eps=BN_EPS)
        self.occlusion = nn.Conv2d(self.hourglass.out_filters * reshape_depth, 1, kernel_size=7, padding=3)
        self.num_kp = num_kp

    def _sparse_motions(
        self, shape: tuple[int, int, int], kp_driving: torch.Tensor, kp_source: torch.Tensor
    ) -> torch.Tensor:
        """Identity grid for the background, ``grid - kp_driving + kp_source`` per keypoint."""
        bs = kp_driving.shape[0]
        d, h, w = shape
        identity = make_coordinate_grid(shape, dtype=kp_source.dtype, device=kp_source.device).view(1, 1, d, h, w, 3)
        per_kp = identity - kp_driving.view(bs, self.num_kp, 1, 1, 1, 3) + kp_source.view(bs, self.num_kp, 1, 1, 1, 3)
        return torch.cat([identity.expand(bs, 1, d, h, w, 3), per_kp], dim=1)  # (bs, k+1, d, h, w, 3)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> DenseMotion:
        """Compute the deformation.

        Args:
            feature: source feature volume (bs, c, d, h, w).
            kp_driving: driving keypoints (bs, num_kp, 3).
            kp_source: source keypoints (bs, num_kp, 3).
        """
        bs, _, d, h, w = feature.shape
        k1 = self.num_kp + 1
        comp = F.relu(self.norm(self.compress(feature)))  # (bs, compress, d, h, w)
        sparse = self._sparse_motions((d, h, w), kp_driving, kp_source)
        repeated = comp.unsqueeze(1).expand(bs, k1, *comp.shape[1:]).reshape(bs * k1, -1, d, h, w)
        deformed = F.grid_sample(
            repeated, sparse.reshape(bs * k1, d, h, w, 3), mode="bilinear", padding_mode="zeros", align_corners=False
        ).view(bs, k1, -1, d, h, w)
        heat = kp_to_gaussian(kp_driving, (d, h, w), KP_VARIANCE) - kp_to_gaussian(kp_source, (d, h, w), KP_VARIANCE)
        heat = torch.cat([torch.zeros_like(heat[:, :1]), heat], dim=1).unsqueeze(2)  # (bs, k+1, 1, d, h, w)
        hg_in = torch.cat([heat, deformed], dim=2).view(bs, -1, d, h, w)
        prediction: torch.Tensor = self.hourglass(hg_in)
        mask = F.softmax(self.mask(prediction), dim=1)  # (bs, k+1, d, h, w)
        kept = torch.where(mask < MASK_CUTOFF, torch.zeros_like(mask), mask)
        deformation = (sparse * kept.unsqueeze(-1)).sum(dim=1)  # (bs, d, h, w, 3)
        occlusion = torch.sigmoid(self.occlusion(prediction.reshape(bs, -1, h, w)))
        return DenseMotion(mask=mask, deformation=deformation, occlusion_map=occlusion)
