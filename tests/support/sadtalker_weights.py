"""SadTalker checkpoints in the published layout, filled with the fixtures' deterministic weights.

`SadTalker_V0.0.2_256.safetensors` holds every network under its prefix (`face_3drecon.`,
`audio2exp.`, ...); the mapping networks go to `mapping_00229-model.pth.tar` (70 coefficients, crop)
and `mapping_00109-model.pth.tar` (73, full) under `mapping`. Weights: the fill rule of
`../shared/fixtures/sadtalker/README.md` with the spectral norms made unit length (`snfix`), so
the decoder does not saturate. The 512 file has the same keys and shapes as the 256 one; it is a
link to it (same values: the tests check wiring at 512, the fixtures check the numbers).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch
from safetensors.torch import save_file

from comps.animation.sadtalker.audio2exp import ExpNet
from comps.animation.sadtalker.audio2pose import Audio2Pose
from comps.animation.sadtalker.face3d import ReconNet
from comps.animation.sadtalker.generator import OcclusionAwareSPADEGenerator
from comps.animation.sadtalker.keypoints import KPDetector
from comps.animation.sadtalker.mapping import MappingNet

FILL_PATH = Path(__file__).resolve().parents[1] / "comps" / "animation" / "sadtalker" / "fill.py"


def fill_module() -> ModuleType:
    """`tests/comps/animation/sadtalker/fill.py` (loaded by path: the tests have no packages)."""
    spec = importlib.util.spec_from_file_location("sadtalker_test_fill", FILL_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def filled(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict under the fill rule, spectral norms fixed."""
    fill = fill_module()
    state: dict[str, torch.Tensor] = fill.snfix(fill.filled_state_dict(module.state_dict()))
    return state


def write_sadtalker_checkpoints(folder: Path) -> Path:
    """Write the 256 (and linked 512) safetensors and both mapping files into `folder`; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, net in (
        ("face_3drecon", ReconNet()),
        ("audio2exp", ExpNet()),
        ("audio2pose", Audio2Pose()),
        ("kp_extractor", KPDetector()),
        ("generator", OcclusionAwareSPADEGenerator()),
    ):
        for key, value in filled(net).items():
            tensors[f"{prefix}.{key}"] = value.contiguous()
    save_file(tensors, str(folder / "SadTalker_V0.0.2_256.safetensors"))
    (folder / "SadTalker_V0.0.2_512.safetensors").symlink_to("SadTalker_V0.0.2_256.safetensors")
    torch.save({"mapping": filled(MappingNet(coeff_nc=70))}, folder / "mapping_00229-model.pth.tar")
    torch.save({"mapping": filled(MappingNet(coeff_nc=73))}, folder / "mapping_00109-model.pth.tar")
    return folder
