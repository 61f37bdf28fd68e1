"""Deterministic Wav2Lip weights (the fill rule of `shared/fixtures/wav2lip/README.md`) and a checkpoint writer.

`write_checkpoint(path)` saves them in the layout of the published `wav2lip.pth`:
`{"state_dict": {"module." + key: tensor}}`, so tests load them through the real loader.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from comps.animation.wav2lip.network import Wav2Lip


def fill_deterministic(model: torch.nn.Module) -> torch.nn.Module:
    """Overwrite every parameter and buffer of `model` with the README's deterministic values, in place."""
    state = model.state_dict()
    for i, name in enumerate(sorted(state)):
        if name.endswith("num_batches_tracked"):
            continue
        tensor = state[name]
        n = tensor.numel()
        v = np.sin(0.7 * np.arange(n, dtype=np.float64) + 0.1 * i)
        if name.endswith("running_var"):
            v = 1 + 0.5 * np.abs(v)
        elif name.endswith("running_mean"):
            v = 0.1 * v
        elif tensor.dim() >= 2:
            v = v / np.sqrt(n / tensor.shape[0])
        elif name.endswith("weight"):
            v = 1 + 0.1 * v
        else:
            v = 0.05 * v
        with torch.no_grad():
            tensor.copy_(torch.from_numpy(v.reshape(tuple(tensor.shape)).astype(np.float32)))
    return model


@functools.cache
def _deterministic_state() -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in fill_deterministic(Wav2Lip()).state_dict().items()}


def deterministic_wav2lip() -> Wav2Lip:
    """A Wav2Lip in eval() mode holding the deterministic weights."""
    model = Wav2Lip()
    model.load_state_dict(_deterministic_state(), strict=True)
    return model.eval()


def write_checkpoint(path: Path) -> Path:
    """Save the deterministic weights as `{"state_dict": {"module." + k: v}}` (the official layout) at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"module." + k: v for k, v in _deterministic_state().items()}}, path)
    return path
