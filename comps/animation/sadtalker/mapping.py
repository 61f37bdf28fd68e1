"""MappingNet: a 27-frame window of 3DMM coefficients to head pose, translation and keypoint deltas."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# LeakyReLU slope of the mapping net's residual encoder.
MAPPING_SLOPE = 0.1
# Dilation of the encoder convs; each layer trims 3 frames on each side of the window.
DILATION = 3


@dataclass(frozen=True, slots=True)
class HeadMotion:
    """MappingNet outputs (raw, before any keypoint transformation).

    Attributes:
        yaw: angle-bin logits (bs, num_bins).
        pitch: angle-bin logits (bs, num_bins).
        roll: angle-bin logits (bs, num_bins).
        t: translation (bs, 3).
        exp: keypoint deltas (bs, 3 * num_kp).
    """

    yaw: torch.Tensor
    pitch: torch.Tensor
    roll: torch.Tensor
    t: torch.Tensor
    exp: torch.Tensor


class MappingNet(nn.Module):
    """1-D conv encoder over the coefficient window; ``coeff_nc`` is 70 (crop) or 73 (full)."""

    def __init__(
        self, *, coeff_nc: int = 70, descriptor_nc: int = 1024, layer: int = 3, num_kp: int = 15, num_bins: int = 66
    ) -> None:
        super().__init__()
        self.first = nn.Sequential(nn.Conv1d(coeff_nc, descriptor_nc, kernel_size=7, padding=0, bias=True))
        self.layer = layer
        for i in range(layer):
            net = nn.Sequential(
                nn.LeakyReLU(MAPPING_SLOPE),
                nn.Conv1d(descriptor_nc, descriptor_nc, kernel_size=3, padding=0, dilation=DILATION),
            )
            self.add_module(f"encoder{i}", net)
        self.fc_roll = nn.Linear(descriptor_nc, num_bins)
        self.fc_pitch = nn.Linear(descriptor_nc, num_bins)
        self.fc_yaw = nn.Linear(descriptor_nc, num_bins)
        self.fc_t = nn.Linear(descriptor_nc, 3)
        self.fc_exp = nn.Linear(descriptor_nc, 3 * num_kp)

    def forward(self, semantics: torch.Tensor) -> HeadMotion:
        """Map semantics (bs, coeff_nc, 27) to head motion."""
        out: torch.Tensor = self.first(semantics)
        for i in range(self.layer):
            out = getattr(self, f"encoder{i}")(out) + out[:, :, DILATION:-DILATION]
        pooled = F.adaptive_avg_pool1d(out, 1).flatten(1)
        return HeadMotion(
            yaw=self.fc_yaw(pooled),
            pitch=self.fc_pitch(pooled),
            roll=self.fc_roll(pooled),
            t=self.fc_t(pooled),
            exp=self.fc_exp(pooled),
        )
