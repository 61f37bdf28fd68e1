"""Audio2Pose: audio encoder, CVAE decoder and the chunked driver with explicit latents."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import torch

from comps.animation.sadtalker.audio2pose import Audio2Pose, draw_latents, num_latent_draws, predict_poses

POSE_STYLE = 7  # index.json: pose_style


@pytest.fixture(scope="module")
def net(fill: ModuleType) -> Audio2Pose:
    module: Audio2Pose = fill.fill_module(Audio2Pose())
    return module


def test_state_dict_matches_manifest(manifest: Callable[[str], dict[str, Any]], check_manifest: Any) -> None:
    check_manifest(Audio2Pose(), manifest("audio2pose"))


def test_encoder_and_decoder_chunk0(net: Audio2Pose, tensor: Callable[[str], torch.Tensor], err: Any) -> None:
    mels = tensor("audio/out_indiv_mels.npy")
    ref = tensor("audio2pose/in_ref.npy")
    z = tensor("audio2pose/in_z.npy")
    with torch.no_grad():
        emb = net.audio_encoder(mels[:, 1:33])
        motion = net.decode_chunk(ref[:, 0, 64:70], z[0], torch.tensor([POSE_STYLE]), emb)
    assert emb.shape == (1, 32, 512)
    assert err(emb, tensor("audio2pose/out_audio_emb_chunk0.npy")) < 1e-2
    assert err(motion, tensor("audio2pose/out_decoder_chunk0.npy")) < 3e-5


def test_driver_matches_fixture(net: Audio2Pose, tensor: Callable[[str], torch.Tensor], err: Any) -> None:
    mels = tensor("audio/out_indiv_mels.npy")
    ref = tensor("audio2pose/in_ref.npy")
    z = tensor("audio2pose/in_z.npy")
    assert num_latent_draws(41) == z.shape[0] == 2
    with torch.no_grad():
        out = predict_poses(net, mels, ref, POSE_STYLE, z)
        short = predict_poses(net, mels[:, :20], ref[:, :20], POSE_STYLE, z[:1])
    assert torch.equal(out.motion[:, 0], torch.zeros(1, 6))
    assert err(out.motion, tensor("audio2pose/out_pose_motion_pred.npy")) < 3e-5
    assert err(out.pose, tensor("audio2pose/out_pose_pred.npy")) < 3e-5
    assert err(short.pose, tensor("audio2pose/out_pose_pred_T20.npy")) < 3e-5


def test_latents_are_seeded_and_counted(net: Audio2Pose, tensor: Callable[[str], torch.Tensor]) -> None:
    a = draw_latents(41, torch.Generator().manual_seed(3))
    b = draw_latents(41, torch.Generator().manual_seed(3))
    assert a.shape == (2, 1, 64) and torch.equal(a, b)
    assert num_latent_draws(33) == 1 and num_latent_draws(34) == 2 and num_latent_draws(1) == 0
    with pytest.raises(ValueError, match="latent draws"):
        predict_poses(net, tensor("audio/out_indiv_mels.npy"), tensor("audio2pose/in_ref.npy"), 0, a[:1])
