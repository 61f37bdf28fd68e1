"""Randomly initialised GFPGAN v1.4 weights (`GFPGANv1Clean`) saved in the published checkpoint layout."""

from __future__ import annotations

from pathlib import Path

import torch

from comps.animation.enhance import build_gfpgan_v14


def write_gfpgan_checkpoint(path: Path, *, seed: int = 0) -> Path:
    """Save a seeded random GFPGANv1Clean as `{"params_ema": state_dict}` (the key GFPGANv1.4.pth uses) at `path`."""
    torch.manual_seed(seed)
    net = build_gfpgan_v14()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": net.state_dict()}, path)
    return path


def narrow_gfpgan(seed: int, *, fill_zeros: bool = False) -> torch.nn.Module:
    """GFPGANv1Clean at a quarter of v1.4's width, seeded, in eval mode: the same layers and code paths, fast.

    `fill_zeros`: the init leaves the noise strengths and StyleGAN biases at 0 (a checkpoint does not);
    fill them with small seeded values so the code paths they feed count in a comparison.
    """
    torch.manual_seed(seed)
    net = build_gfpgan_v14(narrow=0.25, channel_multiplier=1)
    if fill_zeros:
        with torch.no_grad():
            for param in net.parameters():
                if not param.any():
                    param.copy_(0.1 * torch.randn_like(param))
    return net.eval()
