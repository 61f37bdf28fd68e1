"""Wav2Lip-style audio encoder: one (1, 80, 16) mel window to a 512-feature embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (cin, cout, kernel, stride, padding, residual) of the 13 conv blocks. Spatially the
# (80, 16) window shrinks to 27x16, 9x6, 3x3 and finally 1x1 after the unpadded 3x3 conv.
_LAYERS: tuple[tuple[int, int, int, tuple[int, int], int, bool], ...] = (
    (1, 32, 3, (1, 1), 1, False),
    (32, 32, 3, (1, 1), 1, True),
    (32, 32, 3, (1, 1), 1, True),
    (32, 64, 3, (3, 1), 1, False),
    (64, 64, 3, (1, 1), 1, True),
    (64, 64, 3, (1, 1), 1, True),
    (64, 128, 3, (3, 3), 1, False),
    (128, 128, 3, (1, 1), 1, True),
    (128, 128, 3, (1, 1), 1, True),
    (128, 256, 3, (3, 2), 1, False),
    (256, 256, 3, (1, 1), 1, True),
    (256, 512, 3, (1, 1), 0, False),
    (512, 512, 1, (1, 1), 0, False),
)
EMBED_DIM = 512


class ConvBNReLU(nn.Module):
    """Conv2d + BatchNorm (``conv_block``), an optional residual add, then ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: tuple[int, int], padding: int, residual: bool) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size=kernel, stride=stride, padding=padding), nn.BatchNorm2d(cout)
        )
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv_block(x)
        if self.residual:
            out = out + x
        return F.relu(out)


def build_audio_encoder() -> nn.Sequential:
    """Return the 13-block encoder; keys are ``<i>.conv_block.{0,1}.*`` as in the checkpoints."""
    return nn.Sequential(*(ConvBNReLU(*spec) for spec in _LAYERS))


def encode_windows(encoder: nn.Sequential, mels: torch.Tensor) -> torch.Tensor:
    """Embed mel windows (n, 1, 80, 16) as (n, 512)."""
    out: torch.Tensor = encoder(mels)
    return out.reshape(mels.shape[0], EMBED_DIM)
