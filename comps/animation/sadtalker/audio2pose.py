"""PoseVAE (Audio2Pose): audio to head pose, decoded in 32-frame chunks from one latent draw each."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from comps.animation.sadtalker.audio_encoder import build_audio_encoder, encode_windows
from comps.animation.sadtalker.cvae import CVAE, LATENT, POSE_DIM, SEQ_LEN, PoseSequenceDiscriminator


class PoseAudioEncoder(nn.Module):
    """Wraps the shared encoder architecture (separate weights) under ``audio_encoder.audio_encoder``."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = build_audio_encoder()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """Embed mel windows (bs, n, 1, 80, 16) as (bs, n, 512)."""
        bs, n = mels.shape[:2]
        return encode_windows(self.audio_encoder, mels.reshape(bs * n, *mels.shape[2:])).reshape(bs, n, -1)


class Audio2Pose(nn.Module):
    """Audio encoder + pose CVAE + (unused) discriminator, in the checkpoint's key layout."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = PoseAudioEncoder()
        self.netG = CVAE()
        self.netD_motion = PoseSequenceDiscriminator()

    def decode_chunk(
        self, ref_pose: torch.Tensor, z: torch.Tensor, style: torch.Tensor, emb: torch.Tensor
    ) -> torch.Tensor:
        """Decode pose motion (bs, 32, 6) for one chunk of audio embeddings (bs, 32, 512)."""
        out: torch.Tensor = self.netG.decoder(ref_pose, z, style, emb)
        return out


@dataclass(frozen=True, slots=True)
class PosePrediction:
    """Pose driver outputs.

    Attributes:
        motion: pose relative to frame 0 (bs, T, 6); row 0 is zero.
        pose: absolute pose ``ref[64:70] + motion`` (bs, T, 6).
    """

    motion: torch.Tensor
    pose: torch.Tensor


def num_latent_draws(num_frames: int) -> int:
    """Return how many latent draws a clip of ``num_frames`` video frames consumes."""
    num = num_frames - 1
    return num // SEQ_LEN + (1 if num % SEQ_LEN else 0)


def draw_latents(num_frames: int, generator: torch.Generator, *, batch: int = 1) -> torch.Tensor:
    """Draw the chunk latents (draws, batch, 64) from ``generator`` in chunk order."""
    return torch.randn((num_latent_draws(num_frames), batch, LATENT), generator=generator)


def predict_poses(
    net: Audio2Pose, indiv_mels: torch.Tensor, ref: torch.Tensor, style: int, z: torch.Tensor
) -> PosePrediction:
    """Run the chunked pose driver.

    Frame 0 is the reference, so windows 1..T-1 are decoded: ``(T-1) // 32`` full chunks, then
    a remainder chunk over the last 32 windows (front-padded with the first embedding when fewer
    exist) of which the last ``(T-1) % 32`` rows are kept.

    Args:
        net: the pose network (eval mode).
        indiv_mels: mel windows (bs, T, 1, 80, 16).
        ref: source coefficients (bs, T, 70); ``ref[:, 0, 64:70]`` is the reference pose.
        style: pose style class in [0, 46).
        z: latent draws (draws, bs, 64), one per chunk in chunk order (see ``num_latent_draws``).
    """
    bs, frames = indiv_mels.shape[:2]
    ref_pose = ref[:, 0, -POSE_DIM:]
    num = frames - 1
    full, rem = divmod(num, SEQ_LEN)
    if z.shape[0] != num_latent_draws(frames):
        raise ValueError(f"expected {num_latent_draws(frames)} latent draws for {frames} frames, got {z.shape[0]}")
    classes = torch.full((bs,), style, dtype=torch.long, device=ref.device)
    mels = indiv_mels[:, 1:]
    parts = [torch.zeros(bs, 1, POSE_DIM, dtype=ref.dtype, device=ref.device)]
    for i in range(full):
        emb = net.audio_encoder(mels[:, i * SEQ_LEN : (i + 1) * SEQ_LEN])
        parts.append(net.decode_chunk(ref_pose, z[i].to(ref), classes, emb))
    if rem:
        emb = net.audio_encoder(mels[:, -SEQ_LEN:])
        if emb.shape[1] < SEQ_LEN:
            pad = emb[:, :1].expand(bs, SEQ_LEN - emb.shape[1], emb.shape[2])
            emb = torch.cat([pad, emb], dim=1)
        parts.append(net.decode_chunk(ref_pose, z[full].to(ref), classes, emb)[:, -rem:])
    motion = torch.cat(parts, dim=1)
    return PosePrediction(motion=motion, pose=ref[:, :1, -POSE_DIM:] + motion)
