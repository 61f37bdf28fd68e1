"""GFPGANv1Clean's inference pass, re-written for CPUs: Winograd 3x3 convolutions (NNPACK) and in-place steps.

The published forward (`gfpgan.archs.gfpganv1_clean_arch`) runs every 3x3 convolution through oneDNN's
direct algorithm, which already reaches ~75% of this CPU's matrix-multiply peak, so the network is
compute-bound at ~395 GFLOP per 512x512 face. NNPACK's Winograd F(6x6, 3x3) needs about a fifth of
the multiplications; on an AVX2 EPYC it ran the network's 3x3 layers 2-3x faster, each with a
relative error of ~1.5e-5. `GFPGANForward` computes the same function from the same module's
parameters, layer by layer in the published order, with these differences only:

- 3x3 convolutions on maps of `WINOGRAD_MIN_SIDE` pixels or more go through NNPACK (when asked for);
  on smaller maps NNPACK's per-call kernel transform costs more than it saves, so they stay on oneDNN;
- each StyleConv's sqrt(2) gain is folded into its modulated weights and its bias into the convolution
  (the bias is added before the noise, not after: a re-association, not a change of the function);
- element-wise steps run in place (no copy of the SFT conditions, no concatenation for the half SFT).

The noise is always the checkpoint's fixed noise buffers (`randomize_noise=False`). A batch of more than
one face runs the modulated convolutions as one grouped convolution, as the original does; on a CPU
`FaceEnhancer` passes one face at a time instead (grouped convolutions cost more per face there, and
NNPACK has no groups).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812  (the usual name)

WINOGRAD_MIN_SIDE = 32  # measured: NNPACK loses to oneDNN below 32x32 (0.06x at 4x4, 0.46x at 16x16, 1.26x at 32x32)
PHASE_MIN_SIDE = 128  # measured: upsample + conv fused into phases wins from 128x128 inputs up, loses at 32x32
# _PHASE_TAPS[a][t][k]: how much kernel tap k of a 3x3 convolution on the 2x bilinear upsampling reaches
# input pixel offset t - 1, for output phase a (0: even, 1: odd). Even outputs 2j see the upsampled
# pixels 2j-1, 2j, 2j+1 = (.75, .25)·x[j-1, j], (.25, .75)·x[j-1, j], (.75, .25)·x[j, j+1]; odd ones likewise.
_PHASE_TAPS = torch.tensor(
    [
        [[0.75, 0.25, 0.0], [0.25, 0.75, 0.75], [0.0, 0.0, 0.25]],
        [[0.25, 0.0, 0.0], [0.75, 0.75, 0.25], [0.0, 0.25, 0.75]],
    ]
)
_STYLE_GAIN = math.sqrt(2.0)  # StyleConv's fixed gain after the modulated convolution ("for conversion")


def winograd_available() -> bool:
    """Whether this torch build has NNPACK and it runs on this CPU; the call also initialises NNPACK."""
    return bool(torch._nnpack_available())


class GFPGANForward:
    """`GFPGANv1Clean(x, return_rgb=False, randomize_noise=False)[0]` with Winograd 3x3 convolutions.

    Args:
        net: a `GFPGANv1Clean` in eval mode (its parameters are read at every call, never copied).
        winograd: run the large 3x3 convolutions through NNPACK; the caller checks `winograd_available()`.
    """

    def __init__(self, net: Any, *, winograd: bool) -> None:  # basicsr's modules are untyped
        if winograd and not winograd_available():
            raise ValueError("Winograd convolutions asked for, but this torch build has no usable NNPACK")
        self.net = net
        self.winograd = winograd

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 512, 512) RGB faces in [-1, 1], float32, contiguous -> the restored faces, same layout, unclamped."""
        net = self.net
        batch = x.shape[0]
        feat = F.leaky_relu_(self._conv(net.conv_body_first, x), 0.2)
        skips: list[torch.Tensor] = []
        for block in net.conv_body_down:
            feat = self._resblock(block, feat)
            skips.insert(0, feat)
        feat = F.leaky_relu_(self._conv(net.final_conv, feat), 0.2)
        style_code = net.final_linear(feat.reshape(batch, -1))
        if net.different_w:
            style_code = style_code.view(batch, -1, net.num_style_feat)
        conditions: list[torch.Tensor] = []
        for i, block in enumerate(net.conv_body_up):
            feat = self._resblock(block, feat + skips[i])
            conditions.extend(self._conditions(net.condition_scale[i], net.condition_shift[i], feat))
        return self._decode(net.stylegan_decoder, style_code, conditions, input_is_latent=net.input_is_latent)

    # ---- convolutions ----

    def _conv3x3(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """A stride-1, padding-1 3x3 convolution of a batch with one weight."""
        if self.winograd and min(x.shape[-2:]) >= WINOGRAD_MIN_SIDE:
            return torch._nnpack_spatial_convolution(x, weight, bias, [1, 1], [1, 1])
        return F.conv2d(x, weight, bias, padding=1)

    def _upsample_conv3x3(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """`_conv3x3` of `x` upsampled 2x (bilinear, half-pixel centres, edges clamped), without the upsampled map.

        Each of the four output phases (even/odd row, even/odd column) is a 3x3 convolution of `x`
        itself with weights mixed from `weight` by `_PHASE_TAPS`, so one convolution with 4x the output
        channels on the 4x smaller map, then `pixel_shuffle`, gives the same sums. On `x` padded by
        replication this holds everywhere but the outer ring of output pixels, where the original
        convolution sees its zero padding; that ring is recomputed the original way from 2-pixel strips.
        """
        if not self.winograd or x.shape[0] != 1 or min(x.shape[-2:]) < PHASE_MIN_SIDE:
            return self._conv3x3(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), weight, bias)
        out_channels, in_channels = weight.shape[:2]
        taps = _PHASE_TAPS.to(weight)
        phased = torch.einsum("apk,oikl,bql->oabipq", taps, weight, taps).reshape(4 * out_channels, in_channels, 3, 3)
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
        phase_bias = None if bias is None else bias.repeat_interleave(4)
        out = F.pixel_shuffle(torch._nnpack_spatial_convolution(padded, phased, phase_bias, [0, 0], [1, 1]), 2)

        def exact(strip: torch.Tensor) -> torch.Tensor:
            up = F.interpolate(strip, scale_factor=2, mode="bilinear", align_corners=False)
            return F.conv2d(up, weight, bias, padding=1)

        out[:, :, :1] = exact(x[:, :, :2])[:, :, :1]
        out[:, :, -1:] = exact(x[:, :, -2:])[:, :, -1:]
        out[:, :, :, :1] = exact(x[:, :, :, :2])[:, :, :, :1]
        out[:, :, :, -1:] = exact(x[:, :, :, -2:])[:, :, :, -1:]
        return out

    @staticmethod
    def _conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """A 1x1 convolution; for one face a plain matrix product (MKL), 2-4x faster than oneDNN's 1x1 kernel here."""
        batch, channels, height, width = x.shape
        if batch != 1:
            return F.conv2d(x, weight, bias)
        matrix = weight.view(weight.shape[0], channels)
        pixels = x.view(channels, height * width)
        out = torch.mm(matrix, pixels) if bias is None else torch.addmm(bias[:, None], matrix, pixels)
        return out.view(1, -1, height, width)

    @staticmethod
    def _plain(conv: Any, side: int) -> bool:
        """Whether an `nn.Conv2d` is a `side` x `side` kernel, stride 1, "same" padding, ungrouped, undilated."""
        return (
            tuple(conv.kernel_size) == (side, side)
            and tuple(conv.padding) == (side // 2, side // 2)
            and tuple(conv.stride) == (1, 1)
            and tuple(conv.dilation) == (1, 1)
            and conv.groups == 1
        )

    def _conv(self, conv: Any, x: torch.Tensor) -> torch.Tensor:
        """An `nn.Conv2d`: a plain 3x3 one through `_conv3x3`, a plain 1x1 one through `_conv1x1`."""
        if self._plain(conv, 3):
            return self._conv3x3(x, conv.weight, conv.bias)
        if self._plain(conv, 1):
            return self._conv1x1(x, conv.weight, conv.bias)
        return conv(x)  # type: ignore[no-any-return]

    def _conditions(self, scale: Any, shift: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """GFPGAN's two SFT condition branches (Conv2d, LeakyReLU, Conv2d each) on the same features.

        For one face the two first convolutions run as one with both weights stacked (one input
        transform instead of two in NNPACK); their outputs are contiguous channel slices of it.
        """
        (first_a, act_a, second_a), (first_b, act_b, second_b) = scale, shift
        stackable = all(self._plain(c, 3) and c.bias is not None for c in (first_a, first_b))
        if x.shape[0] != 1 or not stackable or act_a.negative_slope != act_b.negative_slope:
            hidden_a = F.leaky_relu_(self._conv(first_a, x), act_a.negative_slope)
            hidden_b = F.leaky_relu_(self._conv(first_b, x), act_b.negative_slope)
        else:
            weight = torch.cat([first_a.weight, first_b.weight])
            bias = torch.cat([first_a.bias, first_b.bias])
            hidden = F.leaky_relu_(self._conv3x3(x, weight, bias), act_a.negative_slope)
            hidden_a, hidden_b = hidden[:, : first_a.out_channels], hidden[:, first_a.out_channels :]
        return self._conv(second_a, hidden_a), self._conv(second_b, hidden_b)

    def _resblock(self, block: Any, x: torch.Tensor) -> torch.Tensor:
        """GFPGAN's ResBlock: conv, resample, conv, plus the resampled input through a 1x1 convolution."""
        out = F.leaky_relu_(self._conv(block.conv1, x), 0.2)
        if block.scale_factor == 2 and self._plain(block.conv2, 3):
            out = self._upsample_conv3x3(out, block.conv2.weight, block.conv2.bias)
        else:
            out = F.interpolate(out, scale_factor=block.scale_factor, mode="bilinear", align_corners=False)
            out = self._conv(block.conv2, out)
        out = F.leaky_relu_(out, 0.2)
        if block.scale_factor > 1 and block.skip.bias is None:
            # A bias-free 1x1 convolution commutes with bilinear resampling (per-pixel channel mixing vs
            # per-channel weights summing to 1): apply it on the 4x smaller map, then upsample fewer channels.
            skip = self._conv(block.skip, x)
            return out.add_(F.interpolate(skip, scale_factor=block.scale_factor, mode="bilinear", align_corners=False))
        x = F.interpolate(x, scale_factor=block.scale_factor, mode="bilinear", align_corners=False)
        return out.add_(self._conv(block.skip, x))

    def _modulated(
        self, conv: Any, x: torch.Tensor, style: torch.Tensor, *, gain: float, bias: torch.Tensor
    ) -> torch.Tensor:
        """StyleGAN2's ModulatedConv2d times `gain`, plus a per-channel `bias` of shape (C_out,)."""
        batch, channels = x.shape[:2]
        k = conv.kernel_size
        weight = conv.weight * conv.modulation(style).view(batch, 1, channels, 1, 1)  # (B, C_out, C_in, k, k)
        if conv.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + conv.eps)
            weight = weight * (demod * gain).view(batch, conv.out_channels, 1, 1, 1)
        elif gain != 1.0:
            weight = weight * gain
        if conv.sample_mode == "upsample" and batch == 1 and k == 3:
            return self._upsample_conv3x3(x, weight.view(conv.out_channels, channels, k, k), bias)
        if conv.sample_mode == "upsample":
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        elif conv.sample_mode == "downsample":
            x = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        if batch == 1:
            weight = weight.view(conv.out_channels, channels, k, k)
            if k == 3:
                return self._conv3x3(x, weight, bias)
            if k == 1:
                return self._conv1x1(x, weight, bias)
            return F.conv2d(x, weight, bias, padding=conv.padding)
        height, width = x.shape[2:]
        weight = weight.view(batch * conv.out_channels, channels, k, k)
        grouped = F.conv2d(
            x.reshape(1, batch * channels, height, width),
            weight,
            bias.repeat(batch),
            padding=conv.padding,
            groups=batch,
        )
        return grouped.view(batch, conv.out_channels, *grouped.shape[2:])

    # ---- the StyleGAN2 decoder with SFT ----

    def _style_conv(self, layer: Any, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        out = self._modulated(layer.modulated_conv, x, style, gain=_STYLE_GAIN, bias=layer.bias.view(-1))
        out.add_(layer.weight * noise)  # (1,) * (1, 1, H, W): the same noise map on every channel
        return F.leaky_relu_(out, layer.activate.negative_slope)

    def _to_rgb(self, layer: Any, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        out = self._modulated(layer.modulated_conv, x, style, gain=1.0, bias=layer.bias.view(-1))
        if skip is not None:
            if layer.upsample:
                skip = F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
            out.add_(skip)
        return out

    def _decode(
        self, decoder: Any, style_code: torch.Tensor, conditions: list[torch.Tensor], *, input_is_latent: bool
    ) -> torch.Tensor:
        """`StyleGAN2GeneratorCSFT([style_code], conditions, randomize_noise=False)` with no truncation or mixing."""
        styles = style_code if input_is_latent else decoder.style_mlp(style_code)
        latent = styles if styles.ndim == 3 else styles.unsqueeze(1).repeat(1, decoder.num_latent, 1)
        noise = [getattr(decoder.noises, f"noise{i}") for i in range(decoder.num_layers)]
        out = decoder.constant_input.weight.repeat(latent.shape[0], 1, 1, 1)
        out = self._style_conv(decoder.style_conv1, out, latent[:, 0], noise[0])
        skip = self._to_rgb(decoder.to_rgb1, out, latent[:, 1], None)
        i = 1
        layers = zip(
            decoder.style_convs[::2], decoder.style_convs[1::2], noise[1::2], noise[2::2], decoder.to_rgbs, strict=True
        )
        for conv1, conv2, noise1, noise2, to_rgb in layers:
            out = self._style_conv(conv1, out, latent[:, i], noise1)
            if i < len(conditions):
                if decoder.sft_half:  # SFT on the second half of the channels only
                    out[:, out.size(1) // 2 :].mul_(conditions[i - 1]).add_(conditions[i])
                else:
                    out.mul_(conditions[i - 1]).add_(conditions[i])
            out = self._style_conv(conv2, out, latent[:, i + 1], noise2)
            skip = self._to_rgb(to_rgb, out, latent[:, i + 2], skip)
            i += 2
        return skip
