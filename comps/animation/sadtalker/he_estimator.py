"""HEEstimator: facevid2vid's head-pose estimator, kept only so the legacy checkpoint loads strictly.

SadTalker's renderer takes head pose from MappingNet instead; nothing in inference calls this.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from comps.animation.sadtalker.mapping import HeadMotion


class ResBottleneck(nn.Module):
    """Bottleneck residual block with biased convs; a strided conv+BN skip when ``stride != 1``."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        mid = channels // 4
        self.conv1 = nn.Conv2d(channels, mid, kernel_size=1)
        self.conv2 = nn.Conv2d(mid, mid, kernel_size=3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(mid, channels, kernel_size=1)
        self.norm1 = nn.BatchNorm2d(mid)
        self.norm2 = nn.BatchNorm2d(mid)
        self.norm3 = nn.BatchNorm2d(channels)
        self.stride = stride
        if stride != 1:
            self.skip = nn.Conv2d(channels, channels, kernel_size=1, stride=stride)
            self.norm4 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = F.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        skip: torch.Tensor = self.norm4(self.skip(x)) if self.stride != 1 else x
        return F.relu(out + skip)


def _stack(prefix: str, channels: int, count: int) -> nn.Sequential:
    seq = nn.Sequential()
    for i in range(count):
        seq.add_module(f"{prefix}_{i}", ResBottleneck(channels, 1))
    return seq


class HEEstimator(nn.Module):
    """ResNet-style regressor of yaw/pitch/roll bins, translation and keypoint deltas."""

    def __init__(
        self, *, block_expansion: int = 64, num_kp: int = 15, image_channel: int = 3, num_bins: int = 66
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(image_channel, block_expansion, kernel_size=7, padding=3, stride=2)
        self.norm1 = nn.BatchNorm2d(block_expansion)
        self.conv2 = nn.Conv2d(block_expansion, 256, kernel_size=1)
        self.norm2 = nn.BatchNorm2d(256)
        self.block1 = _stack("b1", 256, 3)
        self.conv3 = nn.Conv2d(256, 512, kernel_size=1)
        self.norm3 = nn.BatchNorm2d(512)
        self.block2 = ResBottleneck(512, 2)
        self.block3 = _stack("b3", 512, 3)
        self.conv4 = nn.Conv2d(512, 1024, kernel_size=1)
        self.norm4 = nn.BatchNorm2d(1024)
        self.block4 = ResBottleneck(1024, 2)
        self.block5 = _stack("b5", 1024, 5)
        self.conv5 = nn.Conv2d(1024, 2048, kernel_size=1)
        self.norm5 = nn.BatchNorm2d(2048)
        self.block6 = ResBottleneck(2048, 2)
        self.block7 = _stack("b7", 2048, 2)
        self.fc_roll = nn.Linear(2048, num_bins)
        self.fc_pitch = nn.Linear(2048, num_bins)
        self.fc_yaw = nn.Linear(2048, num_bins)
        self.fc_t = nn.Linear(2048, 3)
        self.fc_exp = nn.Linear(2048, 3 * num_kp)

    def forward(self, image: torch.Tensor) -> HeadMotion:
        """Estimate head motion from images (bs, 3, H, W)."""
        out = F.max_pool2d(F.relu(self.norm1(self.conv1(image))), kernel_size=3, stride=2, padding=1)
        out = F.relu(self.norm2(self.conv2(out)))
        out = self.block1(out)
        out = F.relu(self.norm3(self.conv3(out)))
        out = self.block3(self.block2(out))
        out = F.relu(self.norm4(self.conv4(out)))
        out = self.block5(self.block4(out))
        out = F.relu(self.norm5(self.conv5(out)))
        out = self.block7(self.block6(out))
        pooled = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return HeadMotion(
            yaw=self.fc_yaw(pooled),
            pitch=self.fc_pitch(pooled),
            roll=self.fc_roll(pooled),
            t=self.fc_t(pooled),
            exp=self.fc_exp(pooled),
        )
