"""SadTalkerPipeline: source face + 16 kHz speech to 25 fps talking-head frames."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from comps.animation.sadtalker.align import RECON_SIZE
from comps.animation.sadtalker.audio import FPS, audio_features
from comps.animation.sadtalker.audio2pose import draw_latents
from comps.animation.sadtalker.checkpoints import PREPROCESS_MODES, SadTalkerNetworks, load_networks
from comps.animation.sadtalker.coeffs import SEMANTIC_DIM, audio_to_coeffs, blink_ratio, render_targets
from comps.animation.sadtalker.face3d import semantic_coeffs
from comps.animation.sadtalker.renderer import FaceRenderer, PoseOverride, source_window, target_window

FULL_DIM = 73  # semantics plus the crop parameters [s, tx, ty]
NUM_POSE_STYLES = 46


def spread_degrees(values: Sequence[float], num_frames: int) -> npt.NDArray[np.float32]:
    """Spread user head angles (degrees) over a clip at constant angular speed, as upstream does.

    One value holds for every frame; several are visited in order, each segment getting
    frames in proportion to its angular change.
    """
    vals = np.asarray(values, dtype=np.float64)
    if vals.size == 0:
        raise ValueError("an angle override needs at least one value")
    travelled = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(vals)))])
    if vals.size == 1 or travelled[-1] == 0 or num_frames == 1:
        return np.full(num_frames, vals[0], dtype=np.float32)
    positions = np.linspace(0.0, travelled[-1], num_frames)
    return np.interp(positions, travelled, vals).astype(np.float32)


def blink_sequence(frames: int, *, still: bool, blink: bool | None, seed: int) -> npt.NDArray[np.float32]:
    """The eye-blink ratio per frame (frames, 1): upstream's random blinks, or zeros (no blinks).

    `blink` None follows upstream: blinks unless `still`.
    """
    if still if blink is None else not blink:
        return np.zeros((frames, 1), np.float32)
    return blink_ratio(frames, np.random.default_rng(seed))


def to_uint8_frames(images: torch.Tensor) -> npt.NDArray[np.uint8]:
    """Convert (n, 3, H, W) images in [0, 1] to (n, H, W, 3) uint8 RGB, rounding to nearest."""
    out = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    return np.ascontiguousarray(out.cpu().numpy())


class SadTalkerPipeline:
    """Loads the SadTalker networks once and renders clips frame by frame."""

    def __init__(
        self,
        *,
        checkpoint_dir: Path,
        device: torch.device,
        size: int = 256,
        preprocess: str = "crop",
        batch_size: int = 1,
        networks: SadTalkerNetworks | None = None,
    ) -> None:
        """Load (or adopt) the networks.

        Args:
            checkpoint_dir: folder with the SadTalker checkpoints.
            device: where the networks run.
            size: render size, 256 or 512.
            preprocess: crop, extcrop, resize, full or extfull (full modes use 73 coefficients).
            batch_size: frames rendered per generator call.
            networks: already-loaded networks (then ``checkpoint_dir`` is not read).
        """
        if preprocess not in PREPROCESS_MODES:
            raise ValueError(f"preprocess must be one of {PREPROCESS_MODES}, got {preprocess!r}")
        self.size = size
        self.device = device
        self.full = "full" in preprocess
        self.batch_size = max(1, batch_size)
        self.nets = (
            networks
            if networks is not None
            else load_networks(checkpoint_dir, size=size, preprocess=preprocess, device=device)
        )
        self.renderer = FaceRenderer(
            kp_detector=self.nets.kp_extractor, mapping=self.nets.mapping, generator=self.nets.generator
        )

    def extract_coeffs(
        self, face_rgb_224: npt.NDArray[np.uint8], *, crop_params: Sequence[float] | None = None
    ) -> npt.NDArray[np.float32]:
        """Return the source coefficients of an aligned 224x224 RGB face crop.

        Returns ``[exp (64) | angle (3) | trans (3)]`` (70 values), plus the alignment's crop
        parameters ``[s, tx, ty]`` when given (73 values, needed by the full preprocess modes).
        """
        if face_rgb_224.shape != (RECON_SIZE, RECON_SIZE, 3):
            raise ValueError(f"expected a ({RECON_SIZE}, {RECON_SIZE}, 3) RGB crop, got {face_rgb_224.shape}")
        image = torch.from_numpy(np.ascontiguousarray(face_rgb_224)).to(self.device, torch.float32)
        with torch.inference_mode():
            full = self.nets.face3d(image.permute(2, 0, 1).unsqueeze(0) / 255.0)
            coeffs = semantic_coeffs(full)[0].cpu().numpy().astype(np.float32)
        if crop_params is None:
            return coeffs
        return np.concatenate([coeffs, np.asarray(crop_params, dtype=np.float32).reshape(3)])

    def render(
        self,
        source_image_rgb: npt.NDArray[np.uint8],
        source_coeffs: npt.NDArray[np.float32],
        audio_16k: npt.NDArray[np.float32],
        *,
        still: bool = False,
        expression_scale: float = 1.0,
        pose_style: int = 0,
        seed: int = 0,
        yaw: Sequence[float] | None = None,
        pitch: Sequence[float] | None = None,
        roll: Sequence[float] | None = None,
        blink: bool | None = None,
    ) -> Iterator[npt.NDArray[np.uint8]]:
        """Yield ``floor(len(audio) / 640)`` frames (size, size, 3) uint8 RGB at 25 fps.

        Args:
            source_image_rgb: the (cropped) source face (H, W, 3) uint8; resized to size x size.
            source_coeffs: from ``extract_coeffs`` (70 values; 73 in the full modes).
            audio_16k: mono speech at 16 kHz, float32.
            still: keep the source head pose (and, unless ``blink`` says otherwise, skip random blinks).
            expression_scale: multiplies the predicted expression coefficients.
            pose_style: head-motion style in [0, 46).
            seed: seeds the blink positions and the pose latents (same seed, same video).
            yaw: optional head yaw in degrees (one value, or several visited in turn).
            pitch: optional head pitch in degrees.
            roll: optional head roll in degrees.
            blink: random eye blinks (upstream's: 5-frame blinks, none in clips of 20 frames or
                fewer); None: blink unless ``still``, as upstream does.
        """
        source = np.asarray(source_coeffs, dtype=np.float32).reshape(-1)
        need = FULL_DIM if self.full else SEMANTIC_DIM
        if source.size < need:
            raise ValueError(f"source coefficients need {need} values in this preprocess mode, got {source.size}")
        if not 0 <= pose_style < NUM_POSE_STYLES:
            raise ValueError(f"pose_style must be in [0, {NUM_POSE_STYLES}), got {pose_style}")
        _, windows = audio_features(np.asarray(audio_16k, dtype=np.float32).reshape(-1))
        frames = windows.shape[0]
        if frames == 0:
            raise ValueError(f"audio shorter than one video frame ({1000 // FPS} ms)")
        mels = torch.from_numpy(windows).to(self.device).view(1, frames, 1, *windows.shape[1:])
        ratio = blink_sequence(frames, still=still, blink=blink, seed=seed)
        z = draw_latents(frames, torch.Generator().manual_seed(seed)).to(self.device)
        coeffs = audio_to_coeffs(
            expnet=self.nets.audio2exp,
            posenet=self.nets.audio2pose,
            indiv_mels=mels,
            source=torch.from_numpy(source[:SEMANTIC_DIM]),
            ratio=torch.from_numpy(ratio).unsqueeze(0),
            pose_style=pose_style,
            z=z,
        )
        targets = render_targets(coeffs, source, expression_scale=expression_scale, still=still, full=self.full)
        angles = [None if v is None else torch.from_numpy(spread_degrees(v, frames)) for v in (yaw, pitch, roll)]
        with torch.inference_mode():
            state = self.renderer.prepare(
                self._source_tensor(source_image_rgb), self._window(source_window(source[:need]))
            )
        for start in range(0, frames, self.batch_size):
            stop = min(frames, start + self.batch_size)
            sem = torch.from_numpy(np.stack([target_window(targets, f) for f in range(start, stop)])).to(self.device)
            override = PoseOverride(*(None if a is None else a[start:stop].to(self.device) for a in angles))
            with torch.inference_mode():
                batch_state = type(state)(
                    image=state.image.expand(stop - start, -1, -1, -1),
                    canonical=state.canonical.expand(stop - start, -1, -1),
                    keypoints=state.keypoints.expand(stop - start, -1, -1),
                )
                images = self.renderer.render(batch_state, sem, override)
            yield from to_uint8_frames(images)

    def _window(self, window: npt.NDArray[np.float32]) -> torch.Tensor:
        return torch.from_numpy(window).unsqueeze(0).to(self.device)

    def _source_tensor(self, image: npt.NDArray[np.uint8]) -> torch.Tensor:
        """(H, W, 3) uint8 to (1, 3, size, size) float in [0, 1] (antialiased bilinear resize)."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got {image.shape}")
        x = torch.from_numpy(np.ascontiguousarray(image)).to(self.device, torch.float32).permute(2, 0, 1)[None] / 255.0
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return x.clamp(0, 1)
