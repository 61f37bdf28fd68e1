"""Loading Wav2Lip checkpoints in the published layout, strictly, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support.wav2lip_weights import deterministic_wav2lip, write_checkpoint

from comps.animation.wav2lip.checkpoint import CheckpointError, load_wav2lip
from comps.core.weights import WeightsMissingError

CPU = torch.device("cpu")


def test_loads_the_official_layout(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "wav2lip.pth")
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"state_dict"}
    assert all(k.startswith("module.") for k in raw["state_dict"])
    model = load_wav2lip(path, device=CPU)
    assert not model.training
    expected = deterministic_wav2lip().state_dict()
    loaded = model.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)


def test_also_accepts_a_bare_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "bare.pth"
    torch.save(deterministic_wav2lip().state_dict(), path)
    assert not load_wav2lip(path, device=CPU).training


def test_strict_missing_key(tmp_path: Path) -> None:
    state = {"module." + k: v for k, v in deterministic_wav2lip().state_dict().items()}
    del state["module.output_block.1.bias"]
    torch.save({"state_dict": state}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"output_block\.1\.bias"):
        load_wav2lip(tmp_path / "partial.pth", device=CPU)


def test_strict_wrong_shape(tmp_path: Path) -> None:
    state = {"module." + k: v for k, v in deterministic_wav2lip().state_dict().items()}
    state["module.output_block.1.bias"] = torch.zeros(4)
    torch.save({"state_dict": state}, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match="size mismatch"):
        load_wav2lip(tmp_path / "shape.pth", device=CPU)


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "wav2lip.pth"
    path.write_bytes(b"not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match=r"wav2lip\.pth.*avatarchat download wav2lip"):
        load_wav2lip(path, device=CPU)


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    good = write_checkpoint(tmp_path / "good.pth").read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_wav2lip(path, device=CPU)


def test_not_a_state_dict(tmp_path: Path) -> None:
    torch.save({"state_dict": {"a": 1}}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="not a Wav2Lip checkpoint"):
        load_wav2lip(tmp_path / "odd.pth", device=CPU)


def test_missing_file_names_file_and_download_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError, match=r"nothere\.pth.*avatarchat download wav2lip"):
        load_wav2lip(tmp_path / "nothere.pth", device=CPU)
