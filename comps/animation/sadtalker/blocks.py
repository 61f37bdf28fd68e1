"""Small building blocks and grid helpers shared by the face-render networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# BatchNorm eps of the face-render networks (the sync-BN class acts as plain BN in eval).
BN_EPS = 1e-5


def make_coordinate_grid(
    spatial_size: tuple[int, int, int], *, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Return the (d, h, w, 3) grid of (x, y, z) coordinates, each in [-1, 1].

    Coordinate ``i`` of an axis of length ``n`` is ``2 i / (n - 1) - 1``; x runs along width,
    y along height and z along depth.
    """
    d, h, w = spatial_size
    x = 2 * (torch.arange(w, dtype=dtype, device=device) / (w - 1)) - 1
    y = 2 * (torch.arange(h, dtype=dtype, device=device) / (h - 1)) - 1
    z = 2 * (torch.arange(d, dtype=dtype, device=device) / (d - 1)) - 1
    xx = x.view(1, 1, w).expand(d, h, w)
    yy = y.view(1, h, 1).expand(d, h, w)
    zz = z.view(d, 1, 1).expand(d, h, w)
    return torch.stack([xx, yy, zz], dim=3)


def kp_to_gaussian(kp: torch.Tensor, spatial_size: tuple[int, int, int], variance: float) -> torch.Tensor:
    """Render keypoints (bs, k, 3) as unnormalised Gaussians (bs, k, d, h, w)."""
    grid = make_coordinate_grid(spatial_size, dtype=kp.dtype, device=kp.device)
    diff = grid.view(1, 1, *grid.shape) - kp.view(kp.shape[0], kp.shape[1], 1, 1, 1, 3)
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


class SameBlock2d(nn.Module):
    """Conv2d, BatchNorm, then ReLU (or LeakyReLU with PyTorch's default slope 0.01)."""

    def __init__(self, cin: int, cout: int, *, lrelu: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.lrelu = lrelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.conv(x))
        return F.leaky_relu(out) if self.lrelu else F.relu(out)


class DownBlock2d(nn.Module):
    """Conv2d 3x3, BatchNorm, ReLU, then 2x2 average pooling."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), kernel_size=2)


class DownBlock3d(nn.Module):
    """Conv3d 3x3x3, BatchNorm, ReLU, then (1, 2, 2) average pooling (depth is kept)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), kernel_size=(1, 2, 2))


class UpBlock3d(nn.Module):
    """Nearest (1, 2, 2) upsampling, then Conv3d 3x3x3, BatchNorm and ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        return F.relu(self.norm(self.conv(out)))


class ResBlock3d(nn.Module):
    """Pre-activation 3-D residual block: (BN, ReLU, conv) twice plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm3d(channels, eps=BN_EPS)
        self.norm2 = nn.BatchNorm3d(channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class HourglassEncoder(nn.Module):
    """3-D U-Net encoder; returns the input followed by every down block's output."""

    def __init__(self, *, expansion: int, cin: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        chans = [cin] + [min(max_features, expansion * 2 ** (i + 1)) for i in range(num_blocks)]
        self.down_blocks = nn.ModuleList(DownBlock3d(chans[i], chans[i + 1]) for i in range(num_blocks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class HourglassDecoder(nn.Module):
    """3-D U-Net decoder with skip concatenation; output has ``expansion + cin`` channels."""

    def __init__(self, *, expansion: int, cin: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            mult = 1 if i == num_blocks - 1 else 2
            blocks.append(
                UpBlock3d(
                    mult * min(max_features, expansion * 2 ** (i + 1)),
                    min(max_features, expansion * 2**i),
                )
            )
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = expansion + cin
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters, eps=BN_EPS)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        out = skips[-1]
        for block, skip in zip(self.up_blocks, reversed(skips[:-1]), strict=True):
            out = torch.cat([block(out), skip], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass(nn.Module):
    """3-D hourglass (U-Net) used by the dense-motion network."""

    def __init__(self, *, expansion: int, cin: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        kw = {"expansion": expansion, "cin": cin, "num_blocks": num_blocks, "max_features": max_features}
        self.encoder = HourglassEncoder(**kw)
        self.decoder = HourglassDecoder(**kw)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.decoder(self.encoder(x))
        return out
