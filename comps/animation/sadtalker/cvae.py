"""PoseVAE parts: the CVAE decoder that inference runs, plus the encoder and discriminator it loads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from comps.animation.sadtalker.resunet import ResUnet

# SadTalker auido2pose.yaml: CVAE sizes and the number of pose styles (DATASET.NUM_CLASSES).
SEQ_LEN = 32
LATENT = 64
AUDIO_EMB_IN = 512
AUDIO_EMB_OUT = 6
POSE_DIM = 6
NUM_CLASSES = 46
ENCODER_LAYERS = (192, 128)
DECODER_LAYERS = (128, 192)
# Decoder input: ref pose (6) + latent (64) + per-frame audio features (32 * 6).
COND_DIM = POSE_DIM + LATENT + SEQ_LEN * AUDIO_EMB_OUT


class PoseEncoder(nn.Module):
    """Training-time CVAE encoder; never run at inference, present for strict loading.

    Its first Linear takes 192 + 262 = 454 inputs because upstream widens the configured
    first layer size in place.
    """

    def __init__(self) -> None:
        super().__init__()
        self.resunet = ResUnet()
        self.MLP = nn.Sequential()
        sizes = (ENCODER_LAYERS[0] + COND_DIM, *ENCODER_LAYERS[1:])
        for i, (cin, cout) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            self.MLP.add_module(f"L{i}", nn.Linear(cin, cout))
            self.MLP.add_module(f"A{i}", nn.ReLU())
        self.linear_means = nn.Linear(sizes[-1], LATENT)
        self.linear_logvar = nn.Linear(sizes[-1], LATENT)
        self.linear_audio = nn.Linear(AUDIO_EMB_IN, AUDIO_EMB_OUT)
        self.classbias = nn.Parameter(torch.zeros(NUM_CLASSES, LATENT))


class PoseDecoder(nn.Module):
    """Decodes one 32-frame chunk of head motion relative to the reference frame."""

    def __init__(self) -> None:
        super().__init__()
        self.resunet = ResUnet()
        self.MLP = nn.Sequential()
        sizes = (COND_DIM, *DECODER_LAYERS)
        for i, (cin, cout) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            self.MLP.add_module(f"L{i}", nn.Linear(cin, cout))
            self.MLP.add_module(
                f"A{i}" if i + 2 < len(sizes) else "sigmoid", nn.ReLU() if i + 2 < len(sizes) else nn.Sigmoid()
            )
        self.pose_linear = nn.Linear(POSE_DIM, POSE_DIM)
        self.linear_audio = nn.Linear(AUDIO_EMB_IN, AUDIO_EMB_OUT)
        self.classbias = nn.Parameter(torch.zeros(NUM_CLASSES, LATENT))

    def forward(self, ref: torch.Tensor, z: torch.Tensor, style: torch.Tensor, audio_emb: torch.Tensor) -> torch.Tensor:
        """Decode one chunk.

        Args:
            ref: reference pose (bs, 6).
            z: latent draw (bs, 64).
            style: pose style class ids (bs,), int64 in [0, 46).
            audio_emb: audio embeddings (bs, 32, 512).

        Returns:
            Pose motion (bs, 32, 6) relative to the reference frame.
        """
        bs = z.shape[0]
        audio: torch.Tensor = self.linear_audio(audio_emb).reshape(bs, -1)
        x = torch.cat([ref, z + self.classbias[style], audio], dim=-1)
        hidden: torch.Tensor = self.MLP(x)
        pose_emb: torch.Tensor = self.resunet(hidden.reshape(bs, 1, SEQ_LEN, -1))
        out: torch.Tensor = self.pose_linear(pose_emb.squeeze(1))
        return out


class CVAE(nn.Module):
    """Container giving the checkpoint's ``netG.encoder.*`` / ``netG.decoder.*`` layout."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = PoseEncoder()
        self.decoder = PoseDecoder()


class ConvNormRelu1d(nn.Module):
    """Conv1d (no bias), BatchNorm1d, ReLU; stride-2 kernel-4 when downsampling."""

    def __init__(self, cin: int, cout: int, *, downsample: bool) -> None:
        super().__init__()
        kernel, stride = (4, 2) if downsample else (3, 1)
        self.conv = nn.Conv1d(cin, cout, kernel_size=kernel, stride=stride, padding=1, bias=False)
        self.norm = nn.BatchNorm1d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class PoseSequenceDiscriminator(nn.Module):
    """Training-time pose discriminator; never run at inference, present for strict loading."""

    def __init__(self) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            ConvNormRelu1d(POSE_DIM, 256, downsample=True),
            ConvNormRelu1d(256, 512, downsample=True),
            ConvNormRelu1d(512, 1024, downsample=False),
            nn.Conv1d(1024, 1, kernel_size=3, stride=1, padding=1, bias=True),
        )

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        """Score pose sequences (bs, 6, T)."""
        out: torch.Tensor = self.seq(poses)
        return out
