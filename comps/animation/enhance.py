"""GFPGAN v1.4 face restoration on the face region only, batched, with alignment taken from the cached face track.

We build the `GFPGANv1Clean` network directly rather than `GFPGANer`: GFPGANer downloads and runs
its own face detector per frame, while our avatars are aligned once at registration (`FaceTrack.align`).
Per frame: warp onto the 512x512 template with the track's affine, run the network (`GFPGANForward`:
on a CPU one face at a time with Winograd convolutions, elsewhere the whole batch at once), warp back
with the inverse affine and blend with facexlib's soft mask; nothing outside the warped template
square changes.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import torch

from comps.animation.gfpgan_forward import GFPGANForward, winograd_available
from comps.animation.track import Frame
from comps.core.weights import WeightsMissingError

logger = logging.getLogger(__name__)

TEMPLATE = 512  # GFPGAN's aligned face side in pixels
DOWNLOAD_HINT = "avatarchat download gfpgan"
BORDER = (135, 133, 132)  # facexlib's fill for template pixels outside the frame (BGR)
_MASK_CACHE_SIZE = 256  # distinct (affine, frame size) soft masks kept; a video avatar has one per frame


def import_gfpgan_arch() -> type[torch.nn.Module]:
    """Import `GFPGANv1Clean`, first aliasing `torchvision.transforms.functional_tensor` for basicsr 1.4.2.

    basicsr 1.4.2 imports `torchvision.transforms.functional_tensor`, which torchvision 0.17 removed;
    its one use (`rgb_to_grayscale`) lives in `torchvision.transforms.functional` now.
    """
    name = "torchvision.transforms.functional_tensor"
    if name not in sys.modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            sys.modules[name] = importlib.import_module("torchvision.transforms.functional")
    with warnings.catch_warnings():  # basicsr's own imports trip SciPy/torchvision deprecation warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean

    return GFPGANv1Clean  # type: ignore[no-any-return]


def build_gfpgan_v14(*, narrow: float = 1, channel_multiplier: int = 2) -> torch.nn.Module:
    """An untrained GFPGANv1Clean with v1.4's hyper-parameters (those `GFPGANer(arch="clean")` uses).

    `narrow` and `channel_multiplier` scale its widths (v1.4: 1 and 2): smaller, the same layers.
    """
    arch = import_gfpgan_arch()
    return arch(
        out_size=TEMPLATE,
        num_style_feat=512,
        channel_multiplier=channel_multiplier,
        decoder_load_path=None,
        fix_decoder=False,
        num_mlp=8,
        input_is_latent=True,
        different_w=True,
        narrow=narrow,
        sft_half=True,
    )


@dataclass(frozen=True)
class _Paste:
    """Where one restored face goes: its region of the (upscaled) frame, the warp into it and the soft mask."""

    y0: int
    y1: int
    x0: int
    x1: int
    inverse: npt.NDArray[np.float64]  # (2, 3) template -> region coordinates
    mask: npt.NDArray[np.float32]  # (y1 - y0, x1 - x0, 1) blend weight in [0, 1]


class FaceEnhancer:
    """GFPGAN v1.4 applied to the face region of whole frames, a batch at a time."""

    def __init__(
        self, *, net: torch.nn.Module, device: torch.device, upscale: int = 1, published_forward: bool = False
    ) -> None:
        """Wrap a loaded GFPGANv1Clean.

        `published_forward` runs the network's own `forward` on the whole batch instead of
        `GFPGANForward` (the same function, ~2x slower on a CPU): the reference the benchmark and
        tests compare with.
        """
        if upscale < 1:
            raise ValueError(f"upscale must be >= 1, got {upscale}")
        self.net = net.to(device).eval()
        self.device = device
        self.upscale = upscale
        self.published_forward = published_forward
        # On a CPU: one face per call (a batch turns the modulated convolutions into grouped ones, slower
        # per face) and Winograd 3x3 convolutions where NNPACK is usable; elsewhere the whole batch at once.
        self._faces_per_call = 1 if device.type == "cpu" and not published_forward else 0  # 0: all
        self._forward = GFPGANForward(self.net, winograd=device.type == "cpu" and winograd_available())
        logger.info(
            "GFPGAN on %s: %s",
            device,
            "published forward" if published_forward else f"GFPGANForward (Winograd: {self._forward.winograd})",
        )
        self._masks: dict[tuple[bytes, int, int], _Paste] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, *, device: torch.device, upscale: int = 1) -> FaceEnhancer:
        """Load `GFPGANv1.4.pth` (weights under `params_ema`, else `params`) strictly.

        Raises:
            WeightsMissingError: the file does not exist.
            ValueError: the file is not a GFPGAN v1.4 checkpoint.
        """
        if not path.is_file():
            raise WeightsMissingError(f"GFPGAN checkpoint {path} not found; fetch it with `{DOWNLOAD_HINT}`")
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a corrupt file
            raise ValueError(f"cannot read GFPGAN checkpoint {path} ({type(exc).__name__}); {DOWNLOAD_HINT}") from exc
        key = "params_ema" if "params_ema" in raw else "params"
        if not isinstance(raw, dict) or key not in raw:
            raise ValueError(f"{path} is not a GFPGAN checkpoint: no 'params_ema' or 'params' entry")
        net = build_gfpgan_v14()
        try:
            net.load_state_dict(raw[key], strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{path} does not match GFPGAN v1.4 (GFPGANv1Clean): {exc}") from exc
        logger.info("loaded GFPGAN checkpoint %s (%s), upscale %d", path, key, upscale)
        return cls(net=net, device=device, upscale=upscale)

    def enhance(self, frames: list[Frame], affines: list[npt.NDArray[np.float32]]) -> list[Frame]:
        """Restore the face of each frame; returns new frames, `upscale` times larger, same BGR uint8.

        Args:
            frames: BGR uint8 frames, any size.
            affines: one (2, 3) affine per frame mapping it onto the 512x512 template.
        """
        if len(frames) != len(affines):
            raise ValueError(f"{len(frames)} frames but {len(affines)} affines")
        if not frames:
            return []
        faces = np.stack(
            [
                np.asarray(cv2.warpAffine(f, a, (TEMPLATE, TEMPLATE), borderValue=BORDER), np.uint8)
                for f, a in zip(frames, affines, strict=True)
            ]
        )
        restored = self._run(faces)
        return [self._paste(f, a, r) for f, a, r in zip(frames, affines, restored, strict=True)]

    def _run(self, faces: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """(N, 512, 512, 3) BGR uint8 aligned faces -> restored, same layout (GFPGANer's pre/post-processing)."""
        # contiguous NCHW: GFPGAN flattens features with .view(), which channels-last strides break
        x = torch.from_numpy(faces[..., ::-1].copy()).permute(0, 3, 1, 2).contiguous().float().div_(255.0)
        x = (x - 0.5) / 0.5  # to [-1, 1], RGB
        with torch.inference_mode():
            # Fixed noise (the checkpoint's buffers) instead of GFPGANer's fresh noise per call:
            # fresh noise on every frame of a video makes the skin texture flicker.
            x = x.to(self.device)
            if self.published_forward:
                out, _ = self.net(x, return_rgb=False, randomize_noise=False)
            else:
                step = self._faces_per_call or len(x)
                out = torch.cat([self._forward(x[i : i + step]) for i in range(0, len(x), step)])
            pixels = (out.float().clamp(-1, 1) + 1) * 127.5
            rgb: npt.NDArray[np.uint8] = pixels.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return rgb[..., ::-1]

    def _paste_plan(self, affine: npt.NDArray[np.float32], height: int, width: int) -> _Paste:
        """Facexlib's paste-back geometry and soft mask for one affine, cached (the track's affines repeat)."""
        key = (np.ascontiguousarray(affine, dtype=np.float32).tobytes(), height, width)
        with self._lock:
            cached = self._masks.get(key)
        if cached is not None:
            return cached
        s = self.upscale
        inverse = np.asarray(cv2.invertAffineTransform(affine.astype(np.float64)), np.float64) * s
        inverse[:, 2] += 0.5 * s if s > 1 else 0.0  # facexlib's half-pixel offset when upscaling
        corners = np.array([[0, 0, 1], [TEMPLATE, 0, 1], [0, TEMPLATE, 1], [TEMPLATE, TEMPLATE, 1]], np.float64)
        mapped = corners @ inverse.T
        x0, y0 = np.clip(np.floor(mapped.min(axis=0)).astype(int) - 1, 0, [width * s, height * s])
        x1, y1 = np.clip(np.ceil(mapped.max(axis=0)).astype(int) + 1, 0, [width * s, height * s])
        local = inverse.copy()
        local[:, 2] -= (x0, y0)
        size = (int(x1 - x0), int(y1 - y0))
        mask = cv2.warpAffine(np.ones((TEMPLATE, TEMPLATE), np.float32), local, size)
        mask = cv2.erode(mask, np.ones((2 * s, 2 * s), np.uint8))
        edge = int(float(mask.sum()) ** 0.5) // 20  # facexlib: blur width ~5% of the face side
        if edge > 0:
            mask = cv2.erode(mask, np.ones((2 * edge, 2 * edge), np.uint8))
            mask = cv2.GaussianBlur(mask, (2 * edge + 1, 2 * edge + 1), 0)
        plan = _Paste(int(y0), int(y1), int(x0), int(x1), local, np.asarray(mask, np.float32)[..., None])
        with self._lock:
            if len(self._masks) >= _MASK_CACHE_SIZE:
                self._masks.pop(next(iter(self._masks)))
            self._masks[key] = plan
        return plan

    def _paste(self, frame: Frame, affine: npt.NDArray[np.float32], face: npt.NDArray[np.uint8]) -> Frame:
        height, width = frame.shape[:2]
        plan = self._paste_plan(affine, height, width)
        if self.upscale > 1:  # the whole frame grows; only the face is restored (facexlib without a bg upsampler)
            size_up = (width * self.upscale, height * self.upscale)
            out = np.asarray(cv2.resize(frame, size_up, interpolation=cv2.INTER_LANCZOS4), np.uint8)
        else:
            out = frame.copy()
        size = (plan.x1 - plan.x0, plan.y1 - plan.y0)
        warped = cv2.warpAffine(face, plan.inverse, size).astype(np.float32)
        region = out[plan.y0 : plan.y1, plan.x0 : plan.x1].astype(np.float32)
        blended = plan.mask * warped + (1 - plan.mask) * region
        out[plan.y0 : plan.y1, plan.x0 : plan.x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out
