"""ExpNet (SimpleWrapperV2): mel windows plus the source expression to 64 expression coefficients."""

from __future__ import annotations

import torch
from torch import nn

from comps.animation.sadtalker.audio_encoder import EMBED_DIM, build_audio_encoder, encode_windows

EXP_DIM = 64
# Frames per network call in the upstream driver loop (the last chunk may be shorter).
CHUNK = 10


class ExpNet(nn.Module):
    """Audio encoder, then one Linear on [audio (512) | source exp (64) | blink ratio (1)]."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = build_audio_encoder()
        self.mapping1 = nn.Linear(EMBED_DIM + EXP_DIM + 1, EXP_DIM)

    def forward(self, mels: torch.Tensor, ref: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
        """Predict expressions for one chunk.

        Args:
            mels: mel windows (bs * n, 1, 80, 16), frame-major within each batch row.
            ref: source expression per frame (bs, n, 64).
            ratio: eye-blink ratio per frame (bs, n, 1).

        Returns:
            Expression coefficients (bs, n, 64); there is no residual add to ``ref``.
        """
        audio = encode_windows(self.audio_encoder, mels)
        rows = audio.shape[0]
        x = torch.cat([audio, ref.reshape(rows, -1), ratio.reshape(rows, -1)], dim=1)
        out: torch.Tensor = self.mapping1(x)
        return out.reshape(ref.shape[0], ref.shape[1], -1)


def predict_expressions(net: ExpNet, indiv_mels: torch.Tensor, ref: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Run the chunked driver loop over a whole clip.

    Args:
        net: the expression network (eval mode).
        indiv_mels: mel windows (1, T, 1, 80, 16).
        ref: source coefficients per frame (1, T, >=64); columns 0:64 are used.
        ratio: blink ratio (1, T, 1).

    Returns:
        Expression coefficients (1, T, 64).
    """
    frames = indiv_mels.shape[1]
    chunks = []
    for start in range(0, frames, CHUNK):
        mels = indiv_mels[:, start : start + CHUNK].reshape(-1, 1, *indiv_mels.shape[-2:])
        chunks.append(net(mels, ref[:, start : start + CHUNK, :EXP_DIM], ratio[:, start : start + CHUNK]))
    return torch.cat(chunks, dim=1)
