"""Checkpoint loading: the official safetensors key layout, the mapping .pth.tar, and missing files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from comps.animation.sadtalker.audio2exp import ExpNet
from comps.animation.sadtalker.audio2pose import Audio2Pose
from comps.animation.sadtalker.checkpoints import (
    DOWNLOAD_HINT,
    CheckpointMissingError,
    load_networks,
    load_safetensors_modules,
    load_torch_entry,
    mapping_name,
    safetensors_name,
)
from comps.animation.sadtalker.face3d import ReconNet
from comps.animation.sadtalker.generator import OcclusionAwareSPADEGenerator
from comps.animation.sadtalker.keypoints import KPDetector
from comps.animation.sadtalker.mapping import MappingNet

DTYPES = {"F32": torch.float32, "I64": torch.int64}


def test_official_key_set_maps_onto_our_modules(fixture_dir: Path) -> None:
    expected = json.loads((fixture_dir / "expected_safetensors_keys.json").read_text())["keys"]
    assert len(expected) == 1305
    modules = {
        "face_3drecon": ReconNet(),
        "audio2exp": ExpNet(),
        "audio2pose": Audio2Pose(),
        "kp_extractor": KPDetector(),
        "generator": OcclusionAwareSPADEGenerator(),
    }
    ours = {f"{prefix}.{k}": v for prefix, m in modules.items() for k, v in m.state_dict().items()}
    assert set(ours) == set(expected)
    for key, spec in expected.items():
        assert list(ours[key].shape) == spec["shape"], key
        assert ours[key].dtype == DTYPES[spec["dtype"]], key


def test_safetensors_layout_loads_strictly(
    tmp_path: Path, fill: ModuleType, tensor: Callable[[str], torch.Tensor], err: Any
) -> None:
    # Smaller footprint: the official layout for two modules plus a foreign prefix that must be ignored.
    tensors: dict[str, torch.Tensor] = {}
    for prefix, net in (("face_3drecon", ReconNet()), ("audio2exp", ExpNet())):
        for k, v in fill.filled_state_dict(net.state_dict()).items():
            tensors[f"{prefix}.{k}"] = v.contiguous()
    tensors["kp_extractor.kp.bias"] = torch.zeros(15)
    path = tmp_path / safetensors_name(256)
    save_file(tensors, str(path))

    recon, expnet = ReconNet(), ExpNet()
    load_safetensors_modules(path, {"face_3drecon": recon, "audio2exp": expnet})
    with torch.no_grad():
        coeffs = recon.eval()(tensor("face_3drecon/in_image.npy"))
    assert err(coeffs, tensor("face_3drecon/out_coeffs.npy")) < 1e-6
    assert torch.equal(expnet.mapping1.weight, tensors["audio2exp.mapping1.weight"])

    # Strict: a missing key fails loudly.
    del tensors["audio2exp.mapping1.bias"]
    save_file(tensors, str(path))
    with pytest.raises(RuntimeError, match="mapping1.bias"):
        load_safetensors_modules(path, {"audio2exp": ExpNet()})


@pytest.mark.parametrize(("preprocess", "coeff_nc", "fixture"), [("crop", 70, "mapping"), ("full", 73, "mapping_full")])
def test_mapping_checkpoint_loads(
    tmp_path: Path,
    preprocess: str,
    coeff_nc: int,
    fixture: str,
    fill: ModuleType,
    tensor: Callable[[str], torch.Tensor],
    err: Any,
) -> None:
    state = fill.filled_state_dict(MappingNet(coeff_nc=coeff_nc).state_dict())
    path = tmp_path / mapping_name(preprocess)
    torch.save({"mapping": state, "optimizer_mapping": {"state": {}}, "epoch_mapping": 229}, path)
    net = MappingNet(coeff_nc=coeff_nc)
    net.load_state_dict(load_torch_entry(path, "mapping"), strict=True)
    with torch.no_grad():
        out = net.eval()(tensor(f"{fixture}/in_semantics.npy"))
    assert err(out.yaw, tensor(f"{fixture}/out_yaw.npy")) < 1e-5
    with pytest.raises(KeyError, match="generator"):
        load_torch_entry(path, "generator")


def test_missing_files_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointMissingError) as info:
        load_networks(tmp_path, size=512)
    message = str(info.value)
    assert "SadTalker_V0.0.2_512.safetensors" in message and str(tmp_path) in message and DOWNLOAD_HINT in message
    assert isinstance(info.value, FileNotFoundError)

    save_file({"audio2exp.x": torch.zeros(1)}, str(tmp_path / safetensors_name(256)))
    with pytest.raises(CheckpointMissingError, match="mapping_00109-model.pth.tar"):
        load_networks(tmp_path, size=256, preprocess="extfull")

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "facevid2vid_00189-model.pth.tar").write_bytes(b"")
    (legacy / "mapping_00229-model.pth.tar").write_bytes(b"")
    with pytest.raises(CheckpointMissingError, match="epoch_20.pth"):
        load_networks(legacy)
    with pytest.raises(ValueError, match="size"):
        safetensors_name(384)
