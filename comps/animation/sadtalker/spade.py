"""SPADE decoder of the face renderer, with checkpoint-compatible spectral-norm convolutions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# LeakyReLU slope inside the SPADE blocks and before the final image conv.
SPADE_SLOPE = 0.2
# Hidden width of the SPADE modulation MLP.
SPADE_HIDDEN = 128


class SpectralNormConv2d(nn.Module):
    """Conv2d whose weight is ``weight_orig / sigma`` with ``sigma = u . (W v)`` (eval-mode spectral norm).

    The stored ``weight_u`` (out,) and ``weight_v`` (in*kh*kw,) are used as they are: no power
    iteration runs at inference, which matches PyTorch's old-style ``spectral_norm`` in eval mode
    and its state-dict layout (``bias``, ``weight_orig``, ``weight_u``, ``weight_v``).
    """

    weight_u: torch.Tensor
    weight_v: torch.Tensor

    def __init__(self, cin: int, cout: int, kernel_size: int, *, padding: int = 0, bias: bool = True) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.weight_orig = nn.Parameter(torch.empty(cout, cin, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight_orig, a=5**0.5)
        u = F.normalize(torch.randn(cout), dim=0)
        v = F.normalize(torch.randn(cin * kernel_size * kernel_size), dim=0)
        self.register_buffer("weight_u", u)
        self.register_buffer("weight_v", v)
        self.padding = padding

    def normalized_weight(self) -> torch.Tensor:
        """Return ``weight_orig`` divided by the stored spectral-norm estimate."""
        w = self.weight_orig
        sigma = torch.dot(self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v))
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, padding=self.padding)


class SPADE(nn.Module):
    """Spatially-adaptive norm: ``instance_norm(x) * (1 + gamma(seg)) + beta(seg)``."""

    def __init__(self, norm_nc: int, label_nc: int) -> None:
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, SPADE_HIDDEN, kernel_size=3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(SPADE_HIDDEN, norm_nc, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(SPADE_HIDDEN, norm_nc, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x, eps=1e-5)  # no affine, no running stats
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        actv: torch.Tensor = self.mlp_shared(seg)
        gamma: torch.Tensor = self.mlp_gamma(actv)
        beta: torch.Tensor = self.mlp_beta(actv)
        return normalized * (1 + gamma) + beta


class SPADEResnetBlock(nn.Module):
    """Residual block of two SPADE-modulated spectral-norm convs; a learned shortcut if widths differ."""

    def __init__(self, fin: int, fout: int, label_nc: int) -> None:
        super().__init__()
        fmiddle = min(fin, fout)
        self.conv_0 = SpectralNormConv2d(fin, fmiddle, 3, padding=1)
        self.conv_1 = SpectralNormConv2d(fmiddle, fout, 3, padding=1)
        self.conv_s = SpectralNormConv2d(fin, fout, 1, bias=False) if fin != fout else None
        self.norm_0 = SPADE(fin, label_nc)
        self.norm_1 = SPADE(fmiddle, label_nc)
        self.norm_s = SPADE(fin, label_nc) if fin != fout else None

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        if self.conv_s is not None and self.norm_s is not None:
            x_s: torch.Tensor = self.conv_s(self.norm_s(x, seg))
        else:
            x_s = x
        dx: torch.Tensor = self.conv_0(F.leaky_relu(self.norm_0(x, seg), SPADE_SLOPE))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), SPADE_SLOPE))
        return x_s + dx


class SPADEDecoder(nn.Module):
    """Decodes the occlusion-weighted 256-channel feature map into an RGB image in [0, 1].

    At 256 input the feature map is 64x64 and the image 256x256 (two nearest x2 upsamplings).
    """

    def __init__(self, *, ic: int = 256, oc: int = 64, label_nc: int = 256, num_middle: int = 6) -> None:
        super().__init__()
        self.fc = nn.Conv2d(ic, 2 * ic, kernel_size=3, padding=1)
        self.num_middle = num_middle
        for i in range(num_middle):
            self.add_module(f"G_middle_{i}", SPADEResnetBlock(2 * ic, 2 * ic, label_nc))
        self.up_0 = SPADEResnetBlock(2 * ic, ic, label_nc)
        self.up_1 = SPADEResnetBlock(ic, oc, label_nc)
        self.conv_img = nn.Conv2d(oc, 3, kernel_size=3, padding=1)

    def logits(self, feature: torch.Tensor) -> torch.Tensor:
        """Return the pre-sigmoid output of the last conv (bs, 3, 4h, 4w)."""
        x: torch.Tensor = self.fc(feature)
        for i in range(self.num_middle):
            x = getattr(self, f"G_middle_{i}")(x, feature)
        x = self.up_0(F.interpolate(x, scale_factor=2.0, mode="nearest"), feature)
        x = self.up_1(F.interpolate(x, scale_factor=2.0, mode="nearest"), feature)
        out: torch.Tensor = self.conv_img(F.leaky_relu(x, SPADE_SLOPE))
        return out

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(feature))
