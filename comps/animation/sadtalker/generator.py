"""OcclusionAwareSPADEGenerator: warps the source image's feature volume to the driving keypoints."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from comps.animation.sadtalker.blocks import DownBlock2d, ResBlock3d, SameBlock2d
from comps.animation.sadtalker.dense_motion import DenseMotion, DenseMotionNetwork
from comps.animation.sadtalker.spade import SPADEDecoder


@dataclass(frozen=True, slots=True)
class GeneratorOutput:
    """Generator outputs.

    Attributes:
        prediction: rendered image (bs, 3, H, W) in [0, 1].
        motion: the dense-motion outputs (deformation, occlusion map, mask).
    """

    prediction: torch.Tensor
    motion: DenseMotion


class OcclusionAwareSPADEGenerator(nn.Module):
    """Face renderer generator; defaults are SadTalker's ``facerender.yaml`` values."""

    def __init__(
        self,
        *,
        image_channel: int = 3,
        feature_channel: int = 32,
        num_kp: int = 15,
        block_expansion: int = 64,
        max_features: int = 512,
        num_down_blocks: int = 2,
        reshape_channel: int = 32,
        reshape_depth: int = 16,
        num_resblocks: int = 6,
    ) -> None:
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(
            block_expansion=32,
            num_blocks=5,
            max_features=1024,
            num_kp=num_kp,
            feature_channel=feature_channel,
            reshape_depth=reshape_depth,
            compress=4,
        )
        self.first = SameBlock2d(image_channel, block_expansion)
        chans = [min(max_features, block_expansion * 2**i) for i in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(DownBlock2d(chans[i], chans[i + 1]) for i in range(num_down_blocks))
        self.second = nn.Conv2d(chans[-1], max_features, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(reshape_channel))
        out_features = block_expansion * 2**num_down_blocks
        self.third = SameBlock2d(max_features, out_features, lrelu=True)
        self.fourth = nn.Conv2d(out_features, out_features, kernel_size=1)
        self.decoder = SPADEDecoder()
        self.reshape_channel = reshape_channel
        self.reshape_depth = reshape_depth

    def features(
        self, source_image: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor
    ) -> tuple[torch.Tensor, DenseMotion]:
        """Return the occlusion-weighted warped feature map (bs, 256, h, w) and the dense motion."""
        out: torch.Tensor = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        bs, _, h, w = out.shape
        volume: torch.Tensor = self.resblocks_3d(out.view(bs, self.reshape_channel, self.reshape_depth, h, w))
        motion: DenseMotion = self.dense_motion_network(volume, kp_driving, kp_source)
        # The deformation already has the volume's (d, h, w) size at both 256 and 512 input.
        warped = F.grid_sample(volume, motion.deformation, mode="bilinear", padding_mode="zeros", align_corners=False)
        out = self.fourth(self.third(warped.reshape(bs, -1, h, w)))
        occlusion = motion.occlusion_map
        if occlusion.shape[2:] != out.shape[2:]:
            occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear", align_corners=False)
        return out * occlusion, motion

    def forward(self, source_image: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> GeneratorOutput:
        """Render the source image (bs, 3, H, W) in [0, 1] at the driving keypoints (bs, k, 3)."""
        feature, motion = self.features(source_image, kp_driving, kp_source)
        prediction: torch.Tensor = self.decoder(feature)
        return GeneratorOutput(prediction=prediction, motion=motion)
