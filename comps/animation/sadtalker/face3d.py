"""3DMM coefficient regressor: a ResNet-50 backbone with seven 1x1 conv heads (257 values)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Head widths in output order: id, exp, tex, angle, gamma, (tx, ty), tz.
HEAD_SIZES = (80, 64, 80, 3, 27, 2, 1)
# Bottleneck counts of ResNet-50's four stages.
RESNET50_LAYERS = (3, 4, 6, 3)
BOTTLENECK_EXPANSION = 4


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (the stride sits on the 3x3 conv)."""

    def __init__(self, cin: int, width: int, stride: int, *, downsample: bool) -> None:
        super().__init__()
        cout = width * BOTTLENECK_EXPANSION
        self.conv1 = nn.Conv2d(cin, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            if downsample
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity: torch.Tensor = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + identity)


class ResNet50Backbone(nn.Module):
    """ResNet-50 without its classifier; returns the pooled features (bs, 2048, 1, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for stage, blocks in enumerate(RESNET50_LAYERS):
            width = 64 * 2**stage
            stride = 1 if stage == 0 else 2
            layer = nn.Sequential()
            for b in range(blocks):
                layer.add_module(str(b), Bottleneck(cin, width, stride if b == 0 else 1, downsample=b == 0))
                cin = width * BOTTLENECK_EXPANSION
            self.add_module(f"layer{stage + 1}", layer)
        self.out_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.max_pool2d(out, kernel_size=3, stride=2, padding=1)
        for stage in range(len(RESNET50_LAYERS)):
            out = getattr(self, f"layer{stage + 1}")(out)
        return F.adaptive_avg_pool2d(out, 1)


class ReconNet(nn.Module):
    """The 3DMM regressor ("net_recon"); input is the aligned 224x224 crop, RGB in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ResNet50Backbone()
        self.final_layers = nn.ModuleList(
            nn.Conv2d(self.backbone.out_dim, n, kernel_size=1, bias=True) for n in HEAD_SIZES
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Map images (bs, 3, 224, 224) in [0, 1] to coefficients (bs, 257).

        Layout: id 0:80, exp 80:144, tex 144:224, angle 224:227, gamma 227:254, trans 254:257.
        """
        feat: torch.Tensor = self.backbone(image)
        return torch.cat([head(feat) for head in self.final_layers], dim=1).flatten(1)


def semantic_coeffs(full: torch.Tensor) -> torch.Tensor:
    """Select [exp (64) | angle (3) | trans (3)] = 70 values per row from the 257-value output."""
    return torch.cat([full[:, 80:144], full[:, 224:227], full[:, 254:257]], dim=1)
