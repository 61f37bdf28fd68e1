"""The fixtures' deterministic weight fill (README section 3) and its spectral-norm "snfix" step."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def fill_value(name: str, shape: tuple[int, ...], index: int) -> np.ndarray:
    """Return the float32 value the fill rule gives key ``name`` at sorted position ``index``."""
    n = int(np.prod(shape)) if shape else 1
    v = np.sin(0.7 * np.arange(n, dtype=np.float64) + 0.1 * index)
    if name.endswith("running_var"):
        v = 1 + 0.5 * np.abs(v)
    elif name.endswith("running_mean"):
        v = 0.1 * v
    elif len(shape) >= 2:
        v = v / np.sqrt(n / shape[0])
    elif name.endswith("weight"):
        v = 1 + 0.1 * v
    else:
        v = 0.05 * v
    return v.reshape(shape).astype(np.float32)


def filled_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Apply the fill rule to an (unprefixed) state dict; ``num_batches_tracked`` stays as given."""
    out: dict[str, torch.Tensor] = {}
    for i, name in enumerate(sorted(state)):
        tensor = state[name]
        if name.endswith("num_batches_tracked"):
            out[name] = torch.zeros_like(tensor)
            continue
        out[name] = torch.from_numpy(fill_value(name, tuple(tensor.shape), i))
    return out


def fill_module(module: nn.Module) -> nn.Module:
    """Fill ``module`` in place (strict load), switch it to eval mode and return it."""
    module.load_state_dict(filled_state_dict(module.state_dict()), strict=True)
    return module.eval()


def snfix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Make every spectral-norm ``u``/``v`` pair unit length as the ``snfix`` fixtures do.

    ``v <- v/|v|`` and ``u <- W v/|W v|`` in float64 from the float32 tensors, stored as float32.
    """
    out = dict(state)
    for name in state:
        if not name.endswith(".weight_orig"):
            continue
        base = name[: -len("weight_orig")]
        w = state[name].double().reshape(state[name].shape[0], -1)
        v = state[base + "weight_v"].double()
        v = v / v.norm()
        wv = w @ v
        out[base + "weight_v"] = v.float()
        out[base + "weight_u"] = (wv / wv.norm()).float()
    return out
