"""KPDetector: 15 canonical 3-D keypoints from the source image (facevid2vid layout)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from comps.animation.sadtalker.blocks import DownBlock2d, UpBlock3d, make_coordinate_grid


def gaussian_kernel(channels: int, scale: float) -> torch.Tensor:
    """Return the depthwise anti-alias kernel (channels, 1, k, k) used before downsampling.

    ``sigma = (1/scale - 1) / 2`` and ``k = 2 round(4 sigma) + 1``: 1.5 and 13 at scale 0.25.
    Checkpoints store this tensor, and loading overwrites it; this only gives a sane default.
    """
    sigma = (1 / scale - 1) / 2
    size = 2 * round(sigma * 4) + 1
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = g[:, None] * g[None, :]
    kernel = kernel / kernel.sum()
    return kernel.to(torch.float32).expand(channels, 1, size, size).contiguous()


class AntiAliasDownsample(nn.Module):
    """Depthwise Gaussian blur (zero padding) then keep every ``1/scale``-th pixel from 0."""

    weight: torch.Tensor

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.register_buffer("weight", gaussian_kernel(channels, scale))
        self.step = int(1 / scale)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        pad = weight.shape[-1] // 2  # odd kernel: same padding on all sides (6 at scale 0.25)
        out = F.conv2d(F.pad(x, (pad, pad, pad, pad)), weight, groups=self.channels)
        return out[:, :, :: self.step, :: self.step]


class KPHourglass(nn.Module):
    """2-D encoder, a 1x1 conv reshaped into a 3-D volume, then a 3-D decoder."""

    def __init__(
        self, *, expansion: int, cin: int, reshape_features: int, reshape_depth: int, num_blocks: int, max_features: int
    ) -> None:
        super().__init__()
        self.down_blocks = nn.Sequential()
        for i in range(num_blocks):
            block_in = cin if i == 0 else min(max_features, expansion * 2**i)
            self.down_blocks.add_module(f"down{i}", DownBlock2d(block_in, min(max_features, expansion * 2 ** (i + 1))))
        self.conv = nn.Conv2d(min(max_features, expansion * 2**num_blocks), reshape_features, kernel_size=1)
        self.up_blocks = nn.Sequential()
        out_filters = 0
        for i in range(num_blocks):
            in_filters = min(max_features, expansion * 2 ** (num_blocks - i))
            out_filters = min(max_features, expansion * 2 ** (num_blocks - i - 1))
            self.up_blocks.add_module(f"up{i}", UpBlock3d(in_filters, out_filters))
        self.reshape_depth = reshape_depth
        self.out_filters = out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(self.down_blocks(x))
        bs, c, h, w = out.shape
        out = out.view(bs, c // self.reshape_depth, self.reshape_depth, h, w)
        result: torch.Tensor = self.up_blocks(out)
        return result


class KPDetector(nn.Module):
    """Canonical keypoint detector; ``forward`` returns keypoints (bs, num_kp, 3) in [-1, 1].

    Defaults are SadTalker's ``facerender.yaml`` values.
    """

    def __init__(
        self,
        *,
        block_expansion: int = 32,
        feature_channel: int = 32,
        num_kp: int = 15,
        image_channel: int = 3,
        max_features: int = 1024,
        reshape_channel: int = 16384,
        reshape_depth: int = 16,
        num_blocks: int = 5,
        temperature: float = 0.1,
        scale_factor: float = 0.25,
    ) -> None:
        super().__init__()
        self.predictor = KPHourglass(
            expansion=block_expansion,
            cin=image_channel,
            reshape_features=reshape_channel,
            reshape_depth=reshape_depth,
            num_blocks=num_blocks,
            max_features=max_features,
        )
        # feature_channel is the predictor's output width (block_expansion); kept for config parity.
        self.kp = nn.Conv3d(self.predictor.out_filters, num_kp, kernel_size=3, padding=1)
        self.temperature = temperature
        self.down = AntiAliasDownsample(image_channel, scale_factor) if scale_factor != 1 else None
        del feature_channel

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Map images (bs, 3, H, W) in [0, 1] to keypoints (bs, num_kp, 3) as (x, y, z)."""
        x = self.down(image) if self.down is not None else image
        logits: torch.Tensor = self.kp(self.predictor(x))  # (bs, k, d, h, w)
        bs, k, d, h, w = logits.shape
        heat = F.softmax(logits.view(bs, k, -1) / self.temperature, dim=2).view(bs, k, d, h, w, 1)
        grid = make_coordinate_grid((d, h, w), dtype=heat.dtype, device=heat.device)
        return (heat * grid.view(1, 1, d, h, w, 3)).sum(dim=(2, 3, 4))
