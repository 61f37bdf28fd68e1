"""Loads SadTalker checkpoints (the V0.0.2 safetensors, the mapping .pth.tar, or the legacy .pth files)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from comps.animation.sadtalker.audio2exp import ExpNet
from comps.animation.sadtalker.audio2pose import Audio2Pose
from comps.animation.sadtalker.face3d import ReconNet
from comps.animation.sadtalker.generator import OcclusionAwareSPADEGenerator
from comps.animation.sadtalker.he_estimator import HEEstimator
from comps.animation.sadtalker.keypoints import KPDetector
from comps.animation.sadtalker.mapping import MappingNet

DOWNLOAD_HINT = "avatarchat download sadtalker"
SIZES = (256, 512)
# Mapping checkpoints: coeff_nc 70 for crop/extcrop/resize, 73 for full/extfull.
MAPPING_CROP = "mapping_00229-model.pth.tar"
MAPPING_FULL = "mapping_00109-model.pth.tar"
# Legacy files (upstream's misspelling "auido" included) and the dict key holding each network.
LEGACY_RECON = ("epoch_20.pth", "net_recon")
LEGACY_EXP = ("auido2exp_00300-model.pth", "model")
LEGACY_POSE = ("auido2pose_00140-model.pth", "model")
LEGACY_FACEVID = "facevid2vid_00189-model.pth.tar"
PREPROCESS_MODES = ("crop", "extcrop", "resize", "full", "extfull")


class CheckpointMissingError(FileNotFoundError):
    """A SadTalker weight file is not in the checkpoint directory."""

    def __init__(self, filename: str, directory: Path) -> None:
        # Not ``filename``: OSError's own attribute of that name changes how str() renders.
        self.checkpoint = filename
        self.directory = directory
        super().__init__(
            f"SadTalker checkpoint {filename!r} not found in {directory}; run `{DOWNLOAD_HINT}` to fetch it"
        )


def safetensors_name(size: int) -> str:
    """Return the combined checkpoint's file name for render size 256 or 512."""
    if size not in SIZES:
        raise ValueError(f"SadTalker size must be one of {SIZES}, got {size}")
    return f"SadTalker_V0.0.2_{size}.safetensors"


def mapping_name(preprocess: str) -> str:
    """Return the mapping checkpoint for a preprocess mode."""
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(f"preprocess must be one of {PREPROCESS_MODES}, got {preprocess!r}")
    return MAPPING_FULL if "full" in preprocess else MAPPING_CROP


def _require(directory: Path, filename: str) -> Path:
    path = directory / filename
    if not path.is_file():
        raise CheckpointMissingError(filename, directory)
    return path


def load_safetensors_modules(path: Path, modules: Mapping[str, nn.Module]) -> None:
    """Load ``modules`` (prefix -> module) from a combined safetensors file, strictly per module.

    Each module gets the keys that start with ``"<prefix>."``, with that prefix removed.
    Keys of other prefixes (networks the caller did not ask for) are not read.
    """
    from safetensors import safe_open

    wanted: dict[str, dict[str, torch.Tensor]] = {prefix: {} for prefix in modules}
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        for key in list(handle.keys()):  # safe_open handles are not iterable
            prefix, _, rest = key.partition(".")
            if prefix in wanted:
                wanted[prefix][rest] = handle.get_tensor(key)
    for prefix, module in modules.items():
        if not wanted[prefix]:
            raise KeyError(f"{path.name} holds no '{prefix}.' weights")
        module.load_state_dict(wanted[prefix], strict=True)


def load_torch_entry(path: Path, key: str) -> dict[str, torch.Tensor]:
    """Return the state dict stored under ``key`` in a torch checkpoint (tensors only, no code)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or key not in checkpoint:
        raise KeyError(f"{path.name} has no {key!r} entry")
    state: dict[str, torch.Tensor] = checkpoint[key]
    return state


@dataclass(frozen=True, slots=True)
class SadTalkerNetworks:
    """Every network inference uses, loaded and in eval mode.

    ``he_estimator`` is only present in legacy mode (it is never run).
    """

    face3d: ReconNet
    audio2exp: ExpNet
    audio2pose: Audio2Pose
    kp_extractor: KPDetector
    generator: OcclusionAwareSPADEGenerator
    mapping: MappingNet
    he_estimator: HEEstimator | None = None


def use_legacy(directory: Path) -> bool:
    """Legacy .pth mode: no ``*.safetensors`` in the folder (upstream's rule) but the legacy files are there.

    Without either, safetensors mode is assumed so that the error names the normal file.
    """
    return not any(directory.glob("*.safetensors")) and (directory / LEGACY_FACEVID).is_file()


def load_networks(
    directory: Path, *, size: int = 256, preprocess: str = "crop", device: torch.device | None = None
) -> SadTalkerNetworks:
    """Build and load every SadTalker network from ``directory``.

    Raises:
        CheckpointMissingError: a needed file is absent (names the file, the folder and the fix).
    """
    directory = Path(directory)
    combined = safetensors_name(size)
    legacy = use_legacy(directory)
    if not legacy:
        _require(directory, combined)
    mapping_path = _require(directory, mapping_name(preprocess))
    nets = SadTalkerNetworks(
        face3d=ReconNet(),
        audio2exp=ExpNet(),
        audio2pose=Audio2Pose(),
        kp_extractor=KPDetector(),
        generator=OcclusionAwareSPADEGenerator(),
        mapping=MappingNet(coeff_nc=73 if "full" in preprocess else 70),
        he_estimator=HEEstimator() if legacy else None,
    )
    if nets.he_estimator is None:
        modules: dict[str, nn.Module] = {
            "face_3drecon": nets.face3d,
            "audio2exp": nets.audio2exp,
            "audio2pose": nets.audio2pose,
            "kp_extractor": nets.kp_extractor,
            "generator": nets.generator,
        }
        load_safetensors_modules(_require(directory, combined), modules)
    else:
        paths = {
            name: _require(directory, name) for name in (LEGACY_RECON[0], LEGACY_EXP[0], LEGACY_POSE[0], LEGACY_FACEVID)
        }
        nets.face3d.load_state_dict(load_torch_entry(paths[LEGACY_RECON[0]], LEGACY_RECON[1]), strict=True)
        nets.audio2exp.load_state_dict(load_torch_entry(paths[LEGACY_EXP[0]], LEGACY_EXP[1]), strict=True)
        nets.audio2pose.load_state_dict(load_torch_entry(paths[LEGACY_POSE[0]], LEGACY_POSE[1]), strict=True)
        facevid = torch.load(paths[LEGACY_FACEVID], map_location="cpu", weights_only=True)
        nets.kp_extractor.load_state_dict(facevid["kp_detector"], strict=True)
        nets.generator.load_state_dict(facevid["generator"], strict=True)
        nets.he_estimator.load_state_dict(facevid["he_estimator"], strict=True)
    nets.mapping.load_state_dict(load_torch_entry(mapping_path, "mapping"), strict=True)
    for net in (
        nets.face3d,
        nets.audio2exp,
        nets.audio2pose,
        nets.kp_extractor,
        nets.generator,
        nets.mapping,
        nets.he_estimator,
    ):
        if net is not None:
            net.to(device or torch.device("cpu")).eval()
    return nets
