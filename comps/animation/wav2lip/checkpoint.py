"""Loads the published Wav2Lip checkpoints (`wav2lip.pth`, `wav2lip_gan.pth`) into our network, strictly."""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from comps.animation.wav2lip.network import Wav2Lip
from comps.core.weights import WeightsMissingError

logger = logging.getLogger(__name__)

DOWNLOAD_HINT = "avatarchat download wav2lip"
PREFIX = "module."  # the released files were saved from DataParallel


class CheckpointError(ValueError):
    """A checkpoint file exists but is not a Wav2Lip checkpoint (corrupt, truncated, wrong model)."""


def _state_dict(raw: object, path: Path) -> dict[str, torch.Tensor]:
    """Pull the tensors out of `{"state_dict": {...}}` (the released layout) or a bare state dict."""
    state = raw.get("state_dict", raw) if isinstance(raw, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a Wav2Lip checkpoint: expected a dict with a 'state_dict' of tensors")
    return {(k[len(PREFIX) :] if k.startswith(PREFIX) else k): v for k, v in state.items()}


def load_wav2lip(path: Path, *, device: torch.device) -> Wav2Lip:
    """Load a Wav2Lip / Wav2Lip-GAN checkpoint with `strict=True` and return the network in eval() mode on `device`.

    Args:
        path: the `.pth` file (keys under `state_dict`, optionally prefixed `module.`).
        device: where the network will run.

    Raises:
        WeightsMissingError: the file does not exist (the message says how to fetch it).
        CheckpointError: the file is unreadable or its keys/shapes are not Wav2Lip's.
    """
    if not path.is_file():
        raise WeightsMissingError(f"Wav2Lip checkpoint {path} not found; fetch it with `{DOWNLOAD_HINT}`")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError) as exc:
        raise CheckpointError(
            f"cannot read Wav2Lip checkpoint {path} ({type(exc).__name__}: corrupt, truncated or not a PyTorch "
            f"file); fetch it again with `{DOWNLOAD_HINT}`"
        ) from exc
    model = Wav2Lip()
    try:
        model.load_state_dict(_state_dict(raw, path), strict=True)
    except RuntimeError as exc:  # missing/unexpected keys or shape mismatches
        raise CheckpointError(f"{path} does not match the Wav2Lip network: {exc}") from exc
    logger.info("loaded Wav2Lip checkpoint %s", path)
    return model.to(device).eval()
