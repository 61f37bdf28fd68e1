"""The Wav2Lip generator, layer for layer the network of Rudrabha/Wav2Lip (`models/wav2lip.py`, `models/conv.py`).

Module names and order are fixed by the published checkpoints: `state_dict()` must equal
`shared/fixtures/wav2lip/wav2lip_state_dict.json` (352 keys, 36,320,787 parameters).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

FACE_SIZE = 96  # the network's face input/output side in pixels
MEL_BANDS = 80  # mel bands of one audio window
MEL_STEPS = 16  # mel frames of one audio window (0.2 s at 80 mel frames/s)


class ConvBlock(nn.Module):
    """Conv2d + BatchNorm2d + ReLU, with an optional identity residual added before the ReLU."""

    def __init__(
        self,
        cin: int,
        cout: int,
        *,
        kernel_size: int,
        stride: int | tuple[int, int] = 1,
        padding: int = 0,
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block; the residual needs cin == cout and stride 1."""
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)  # type: ignore[no-any-return]


class TransposeBlock(nn.Module):
    """ConvTranspose2d + BatchNorm2d + ReLU (upsampling in the face decoder)."""

    def __init__(
        self, cin: int, cout: int, *, kernel_size: int, stride: int, padding: int, output_padding: int = 0
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        return self.act(self.conv_block(x))  # type: ignore[no-any-return]


def _res(channels: int) -> ConvBlock:
    return ConvBlock(channels, channels, kernel_size=3, stride=1, padding=1, residual=True)


def _down(cin: int, cout: int) -> ConvBlock:
    return ConvBlock(cin, cout, kernel_size=3, stride=2, padding=1)


def _up(cin: int, cout: int) -> TransposeBlock:
    return TransposeBlock(cin, cout, kernel_size=3, stride=2, padding=1, output_padding=1)


class Wav2Lip(nn.Module):
    """The lip-sync generator: a U-Net over the face conditioned on an audio embedding.

    Inputs: `mel` (B, 1, 80, 16) mel windows, `faces` (B, 6, 96, 96) in [0, 1] (channels 0-2 the
    target face with its lower half zeroed, 3-5 the reference face, both in OpenCV's BGR order, as
    upstream trained it). Output: (B, 3, 96, 96) BGR in [0, 1].
    """

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList(
            [
                nn.Sequential(ConvBlock(6, 16, kernel_size=7, stride=1, padding=3)),  # 96x96
                nn.Sequential(_down(16, 32), _res(32), _res(32)),  # 48x48
                nn.Sequential(_down(32, 64), _res(64), _res(64), _res(64)),  # 24x24
                nn.Sequential(_down(64, 128), _res(128), _res(128)),  # 12x12
                nn.Sequential(_down(128, 256), _res(256), _res(256)),  # 6x6
                nn.Sequential(_down(256, 512), _res(512)),  # 3x3
                nn.Sequential(  # 1x1
                    ConvBlock(512, 512, kernel_size=3, stride=1, padding=0),
                    ConvBlock(512, 512, kernel_size=1, stride=1, padding=0),
                ),
            ]
        )
        self.audio_encoder = nn.Sequential(  # (80, 16) -> (1, 1)
            ConvBlock(1, 32, kernel_size=3, stride=1, padding=1),
            _res(32),
            _res(32),
            ConvBlock(32, 64, kernel_size=3, stride=(3, 1), padding=1),
            _res(64),
            _res(64),
            ConvBlock(64, 128, kernel_size=3, stride=3, padding=1),
            _res(128),
            _res(128),
            ConvBlock(128, 256, kernel_size=3, stride=(3, 2), padding=1),
            _res(256),
            ConvBlock(256, 512, kernel_size=3, stride=1, padding=0),
            ConvBlock(512, 512, kernel_size=1, stride=1, padding=0),
        )
        self.face_decoder_blocks = nn.ModuleList(
            [
                nn.Sequential(ConvBlock(512, 512, kernel_size=1, stride=1, padding=0)),  # 1x1
                nn.Sequential(TransposeBlock(1024, 512, kernel_size=3, stride=1, padding=0), _res(512)),  # 3x3
                nn.Sequential(_up(1024, 512), _res(512), _res(512)),  # 6x6
                nn.Sequential(_up(768, 384), _res(384), _res(384)),  # 12x12
                nn.Sequential(_up(512, 256), _res(256), _res(256)),  # 24x24
                nn.Sequential(_up(320, 128), _res(128), _res(128)),  # 48x48
                nn.Sequential(_up(160, 64), _res(64), _res(64)),  # 96x96
            ]
        )
        self.output_block = nn.Sequential(
            ConvBlock(80, 32, kernel_size=3, stride=1, padding=1),
            nn.Conv2d(32, 3, kernel_size=1, stride=1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, mel: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """Generate mouths: (B, 1, 80, 16) mel windows and (B, 6, 96, 96) faces -> (B, 3, 96, 96)."""
        x = self.audio_encoder(mel)  # (B, 512, 1, 1)
        skips = []
        feat = faces
        for block in self.face_encoder_blocks:
            feat = block(feat)
            skips.append(feat)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), skips.pop()), dim=1)
        return self.output_block(x)  # type: ignore[no-any-return]


def fold_batchnorm(model: Wav2Lip) -> Wav2Lip:
    """An inference copy of `model` with each BatchNorm folded into the convolution before it.

    In eval mode BatchNorm is a per-channel affine map, so it merges into the convolution's weight
    and bias: the same function (to float rounding) with 50 fewer passes over the activations.
    The copy's `state_dict` no longer has the checkpoint layout; keep the original for that.
    """
    fused = copy.deepcopy(model).eval()
    blocks = [m for m in fused.modules() if isinstance(m, ConvBlock | TransposeBlock)]
    for block in blocks:
        conv, norm = block.conv_block[0], block.conv_block[1]
        assert isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(norm, nn.BatchNorm2d)
        transpose = isinstance(conv, nn.ConvTranspose2d)
        block.conv_block = nn.Sequential(fuse_conv_bn_eval(conv, norm, transpose=transpose))
    return fused
