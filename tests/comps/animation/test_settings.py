"""AnimationSettings: defaults, our ANIMATION_ variables, OPEA's variables as aliases, and refusals."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from comps.animation.backends import BACKENDS
from comps.animation.settings import DEFAULT_AVATAR, AnimationSettings, ModeName
from comps.core.settings import SettingsError, load_settings

OPEA = (
    "DEVICE",
    "INFERENCE_MODE",
    "CHECKPOINT_PATH",
    "FACE",
    "FACESIZE",
    "OUTFILE",
    "GFPGAN_MODEL_VERSION",
    "UPSCALE_FACTOR",
    "FPS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OPEA:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"ANIMATION_{name}", raising=False)
    monkeypatch.delenv("ANIMATION_MODES", raising=False)


def test_defaults() -> None:
    s = load_settings(AnimationSettings)
    assert s.port == 9066
    assert (s.inference_mode, s.modes, s.fps, s.face_detector) == ("wav2lip", ["wav2lip"], 25.0, "haar")
    assert s.face == DEFAULT_AVATAR and s.face.is_file()  # the shipped portrait: FACE is optional
    assert (s.batch_size, s.bf16, s.compile, s.upscale_factor, s.gfpgan_model_version) == (16, None, False, 1, "1.4")


@pytest.mark.parametrize(("value", "expected"), [("auto", None), ("AUTO", None), ("1", True), ("off", False)])
def test_bf16_is_auto_or_a_boolean(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool | None) -> None:
    monkeypatch.setenv("ANIMATION_BF16", value)
    assert load_settings(AnimationSettings).bf16 is expected


def test_auto_bf16_follows_the_devices_native_kernels() -> None:
    from comps.core.device import resolve_device

    cpu = resolve_device("cpu")
    assert cpu.bf16(None) is cpu.native_bf16
    assert cpu.bf16(True) is True and cpu.bf16(False) is False


def test_opea_variables_are_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    values = {
        "DEVICE": "cpu",
        "INFERENCE_MODE": "wav2lip+gfpgan",
        "CHECKPOINT_PATH": str(tmp_path / "wav2lip_gan.pth"),
        "FACE": str(tmp_path / "face.png"),
        "FACESIZE": "96",
        "OUTFILE": "/outputs/result.mp4",
        "GFPGAN_MODEL_VERSION": "1.3",
        "UPSCALE_FACTOR": "2",
        "FPS": "10",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    s = load_settings(AnimationSettings)
    assert (s.device, s.inference_mode, s.modes) == ("cpu", "wav2lip+gfpgan", ["wav2lip+gfpgan"])
    assert (s.checkpoint_path, s.face) == (tmp_path / "wav2lip_gan.pth", tmp_path / "face.png")
    assert (s.facesize, s.outfile, s.gfpgan_model_version, s.upscale_factor, s.fps) == (
        96,
        Path("/outputs/result.mp4"),
        "1.3",
        2,
        10.0,
    )


def test_opea_wav2lip_only_means_wav2lip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERENCE_MODE", "wav2lip_only")
    assert load_settings(AnimationSettings).inference_mode == "wav2lip"


def test_our_prefixed_name_wins_over_opeas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FPS", "10")
    monkeypatch.setenv("ANIMATION_FPS", "12")
    assert load_settings(AnimationSettings).fps == 12.0


def test_modes_list_keeps_the_default_first_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANIMATION_INFERENCE_MODE", "wav2lip_gan")
    monkeypatch.setenv("ANIMATION_MODES", "wav2lip+gfpgan, wav2lip_gan,wav2lip_only")
    assert load_settings(AnimationSettings).modes == ["wav2lip_gan", "wav2lip+gfpgan", "wav2lip"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INFERENCE_MODE", "musetalk"),
        ("ANIMATION_MODES", "wav2lip,nope"),
        ("FACESIZE", "128"),
        ("GFPGAN_MODEL_VERSION", "1.2"),
        ("UPSCALE_FACTOR", "0"),
        ("FPS", "0"),
        ("ANIMATION_BF16", "maybe"),
        ("ANIMATION_FACE_DETECTOR", "s3fd"),
        ("ANIMATION_RETENTION", "0"),
    ],
)
def test_bad_values_fail_at_start_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name.removeprefix("ANIMATION_")):
        load_settings(AnimationSettings)


def test_every_mode_name_has_exactly_one_backend() -> None:
    assert set(typing.get_args(ModeName)) == set(BACKENDS)
