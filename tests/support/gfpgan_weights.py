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
