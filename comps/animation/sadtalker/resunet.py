"""Residual U-Net on the (32 frames x 6 pose values) map used by the pose CVAE."""

from __future__ import annotations

import torch
from torch import nn

# Channel widths per U-Net level.
FILTERS = (32, 64, 128, 256)
# Down/up sampling runs along time only (height of the 32x6 map).
TIME_STRIDE = (2, 1)


class ResidualConv(nn.Module):
    """Pre-activation residual block (BN, ReLU, conv, BN, ReLU, conv) with a conv+BN skip."""

    def __init__(self, cin: int, cout: int, stride: tuple[int, int] | int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(),
            nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, kernel_size=3, padding=1),
        )
        self.conv_skip = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv_block(x) + self.conv_skip(x)
        return out


class Upsample(nn.Module):
    """Transposed conv doubling the time axis."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.upsample = nn.ConvTranspose2d(channels, channels, kernel_size=TIME_STRIDE, stride=TIME_STRIDE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.upsample(x)
        return out


class ResUnet(nn.Module):
    """Maps a (bs, 1, 32, 6) map to (bs, 1, 32, 6) in (0, 1) (sigmoid output)."""

    def __init__(self, channel: int = 1) -> None:
        super().__init__()
        f0, f1, f2, f3 = FILTERS
        self.input_layer = nn.Sequential(
            nn.Conv2d(channel, f0, kernel_size=3, padding=1),
            nn.BatchNorm2d(f0),
            nn.ReLU(),
            nn.Conv2d(f0, f0, kernel_size=3, padding=1),
        )
        self.input_skip = nn.Sequential(nn.Conv2d(channel, f0, kernel_size=3, padding=1))
        self.residual_conv_1 = ResidualConv(f0, f1, TIME_STRIDE)
        self.residual_conv_2 = ResidualConv(f1, f2, TIME_STRIDE)
        self.bridge = ResidualConv(f2, f3, TIME_STRIDE)
        self.upsample_1 = Upsample(f3)
        self.up_residual_conv1 = ResidualConv(f3 + f2, f2, 1)
        self.upsample_2 = Upsample(f2)
        self.up_residual_conv2 = ResidualConv(f2 + f1, f1, 1)
        self.upsample_3 = Upsample(f1)
        self.up_residual_conv3 = ResidualConv(f1 + f0, f0, 1)
        self.output_layer = nn.Sequential(nn.Conv2d(f0, 1, kernel_size=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1: torch.Tensor = self.input_layer(x) + self.input_skip(x)
        x2: torch.Tensor = self.residual_conv_1(x1)
        x3: torch.Tensor = self.residual_conv_2(x2)
        x4: torch.Tensor = self.upsample_1(self.bridge(x3))
        x6: torch.Tensor = self.upsample_2(self.up_residual_conv1(torch.cat([x4, x3], dim=1)))
        x8: torch.Tensor = self.upsample_3(self.up_residual_conv2(torch.cat([x6, x2], dim=1)))
        x10 = self.up_residual_conv3(torch.cat([x8, x1], dim=1))
        out: torch.Tensor = self.output_layer(x10)
        return out
