"""SadTalkerPipeline end to end at 256 with deterministic weights (a very short clip: CPU-only here)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from torch import nn

from comps.animation.sadtalker.audio2exp import ExpNet
from comps.animation.sadtalker.audio2pose import Audio2Pose
from comps.animation.sadtalker.checkpoints import SadTalkerNetworks
from comps.animation.sadtalker.face3d import ReconNet
from comps.animation.sadtalker.mapping import MappingNet
from comps.animation.sadtalker.pipeline import SadTalkerPipeline, blink_sequence, spread_degrees

# Two video frames (80 ms at 16 kHz): one generator call costs ~25 s on 2 CPU cores.
FRAMES = 2


def test_spread_degrees() -> None:
    assert spread_degrees([5.0], 4).tolist() == [5.0] * 4
    assert np.allclose(spread_degrees([0.0, 30.0], 4), [0, 10, 20, 30])
    # Constant angular speed: the 30-degree leg gets twice the frames of the 15-degree one.
    assert np.allclose(spread_degrees([0.0, 30.0, 15.0], 7), [0, 7.5, 15, 22.5, 30, 22.5, 15])
    with pytest.raises(ValueError):
        spread_degrees([], 3)


def test_blinks_follow_still_unless_asked() -> None:
    frames = 100  # upstream draws blinks only in clips longer than 20 frames
    moving = blink_sequence(frames, still=False, blink=None, seed=4)
    assert moving.shape == (frames, 1) and moving.max() == 1.0  # at least one full blink
    assert np.array_equal(blink_sequence(frames, still=False, blink=None, seed=4), moving)  # seeded
    assert not blink_sequence(frames, still=True, blink=None, seed=4).any()
    assert np.array_equal(blink_sequence(frames, still=True, blink=True, seed=4), moving)
    assert not blink_sequence(frames, still=False, blink=False, seed=4).any()


def test_render_end_to_end(
    tmp_path: Path, fill: ModuleType, filled_generator: nn.Module, filled_kp_detector: nn.Module
) -> None:
    nets = SadTalkerNetworks(
        face3d=fill.fill_module(ReconNet()),
        audio2exp=fill.fill_module(ExpNet()),
        audio2pose=fill.fill_module(Audio2Pose()),
        kp_extractor=filled_kp_detector,  # type: ignore[arg-type]
        generator=filled_generator,  # type: ignore[arg-type]
        mapping=fill.fill_module(MappingNet(coeff_nc=70)),
    )
    pipe = SadTalkerPipeline(
        checkpoint_dir=tmp_path, device=torch.device("cpu"), size=256, batch_size=FRAMES, networks=nets
    )
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    coeffs = pipe.extract_coeffs(face)
    assert coeffs.shape == (70,) and coeffs.dtype == np.float32
    assert pipe.extract_coeffs(face, crop_params=(1.0, 2.0, 3.0)).shape == (73,)

    t = np.arange(FRAMES * 640 + 100) / 16_000  # the tail shorter than a frame is dropped
    speech = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    source = rng.integers(0, 256, size=(300, 280, 3), dtype=np.uint8)
    frames = list(pipe.render(source, coeffs, speech, still=False, pose_style=3, seed=1, yaw=[0.0, 10.0]))
    assert len(frames) == FRAMES
    for frame in frames:
        assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    assert len({f.tobytes() for f in frames}) == FRAMES  # yaw override moves the head

    with pytest.raises(ValueError, match="one video frame"):
        next(pipe.render(source, coeffs, speech[:600]))
    with pytest.raises(ValueError, match="pose_style"):
        next(pipe.render(source, coeffs, speech, pose_style=46))
