"""The Wav2Lip render pipeline: batched inference on a cached face track, paste-back, optional GFPGAN, ffmpeg.

Stages overlap: a worker thread runs the network batch after batch (torch releases the GIL) into a
bounded queue while the caller's thread pastes the previous batch back, enhances it and pipes it
into ffmpeg, which encodes in its own process.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import torch

from comps.animation.encode import VideoEncoder
from comps.animation.enhance import FaceEnhancer
from comps.animation.track import FaceTrack, Frame
from comps.animation.wav2lip.mel import SAMPLE_RATE, mel_windows
from comps.animation.wav2lip.network import FACE_SIZE, Wav2Lip, fold_batchnorm
from comps.core.concurrency import Emit, iterate_in_thread
from comps.core.device import Device
from comps.core.quantization import apply_fp8, finish_fp8_measurement

logger = logging.getLogger(__name__)

QUEUE_DEPTH = 2  # generated batches waiting for paste-back; bounds memory at ~3 batches of 96x96 faces


@dataclass(frozen=True)
class RenderResult:
    """What a render produced: frame count, frame rate and the video's length (frames / fps) in seconds."""

    frames: int
    fps: float
    duration_s: float


@dataclass(frozen=True)
class _Generated:
    """One network batch: the output frame numbers it covers and their 96x96 BGR mouths."""

    start: int
    mouths: npt.NDArray[np.uint8]  # (n, 96, 96, 3), padding rows already dropped


class Wav2LipRenderer:
    """Renders lip-synced frames of an avatar for a clip of audio, and encodes them to MP4.

    Args:
        model: a loaded Wav2Lip (see `load_wav2lip`).
        device: where it runs; supplies autocast and torch.compile.
        batch_size: the most frames per network call. When compiled, every call is padded to it by
            repeating the final frame, so the graph never recompiles; uncompiled, a short batch costs
            only its frames (the streaming session's first ones).
        bf16: run the network under bfloat16 autocast.
        compile: `torch.compile` the network with the device's backend.
        enhancer: GFPGAN, needed for renders with `enhance=True`.
        ffmpeg: the ffmpeg executable.
        fp8_config: an INC FP8 config (Gaudi), applied to the network that runs (BatchNorm folded,
            before compile); in MEASURE mode `finish_fp8` writes the statistics. None: no FP8.
    """

    def __init__(
        self,
        *,
        model: Wav2Lip,
        device: Device,
        batch_size: int = 16,
        bf16: bool = False,
        compile: bool = False,
        enhancer: FaceEnhancer | None = None,
        ffmpeg: str = "ffmpeg",
        fp8_config: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.device = device
        self.batch_size = batch_size
        self.bf16 = bf16
        self.enhancer = enhancer
        self.ffmpeg = ffmpeg
        # BatchNorm folded (~5-10% faster on CPU); FP8 goes on the network that runs, so measuring sees its inputs.
        net = apply_fp8(fold_batchnorm(self.model), fp8_config)
        if device.kind == "cpu" and not bf16:
            # fp32 on a CPU: oneDNN's channels-last convolutions (the face crops arrive channels-last already):
            # 1.10x the frames/s through `generate` on 2 AVX2 cores, frames within one grey level. bf16 (AMX)
            # keeps the layout its speed was measured with.
            net = net.to(memory_format=torch.channels_last)
        self._fp8 = (net, fp8_config)
        self._fp8_finished = False
        self._net = device.compile(self._fp8[0], compile)
        self.compiled = compile
        if bf16 and device.kind == "cpu" and not device.native_bf16:
            logger.warning(
                "bf16 autocast asked for on a CPU without bf16 kernels (oneDNN needs AVX-512 BF16/AMX); "
                "convolutions fall back to slow reference code, ~10x slower than fp32"
            )

    def finish_fp8(self) -> list[Path]:
        """Write the FP8 MEASURE statistics once (at shutdown); nothing without a MEASURE config."""
        if self._fp8_finished:
            return []
        self._fp8_finished = True
        network, config = self._fp8
        return finish_fp8_measurement(network, config)

    def render(
        self,
        track: FaceTrack,
        audio: npt.NDArray[np.float32],
        *,
        out_path: Path,
        fps: float,
        enhance: bool,
        workdir: Path,
    ) -> RenderResult:
        """Render and encode `audio` (16 kHz mono float32) on `track` into an MP4 at `out_path`; blocking.

        `workdir` receives the audio WAV and ffmpeg's log (the caller owns and removes it).
        """
        height, width = track.size
        scale = self.enhancer.upscale if enhance and self.enhancer is not None else 1
        encoder = VideoEncoder(
            out_path=out_path,
            width=width * scale,
            height=height * scale,
            fps=fps,
            audio=audio,
            sample_rate=SAMPLE_RATE,
            workdir=workdir,
            ffmpeg=self.ffmpeg,
        )
        frames = self.frames(track, audio, fps=fps, enhance=enhance)
        with encoder, contextlib.closing(frames):  # closing stops the worker at once if encoding fails
            for frame in frames:
                encoder.write(frame)
        logger.info("rendered %d frames at %g fps to %s", encoder.frames, fps, out_path)
        return RenderResult(frames=encoder.frames, fps=fps, duration_s=encoder.frames / fps)

    def frames(
        self, track: FaceTrack, audio: npt.NDArray[np.float32], *, fps: float, enhance: bool
    ) -> Generator[Frame, None, None]:
        """The output frames (BGR uint8, avatar-sized, or `upscale` times larger when enhanced), in order.

        One frame per 1/fps of audio (rounded; at least one). Raises ValueError before any work when
        the audio is empty, the fps is not positive, or enhancement is asked for but not possible.
        """
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"audio must be non-empty mono samples, got shape {audio.shape}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if enhance and self.enhancer is None:
            raise ValueError("enhancement asked for, but no GFPGAN enhancer is loaded")
        if enhance and track.align is None:
            raise ValueError("enhancement asked for, but the avatar's face track has no GFPGAN alignment")
        mel = mel_windows(audio, fps)  # (n_frames, 1, 80, 16)
        return self._stream(track, mel, enhance)

    def _stream(self, track: FaceTrack, mel: npt.NDArray[np.float32], enhance: bool) -> Generator[Frame, None, None]:
        def work(emit: Emit[_Generated], stopped: threading.Event) -> None:
            self._generate(track, mel, emit, stopped)

        batches = iterate_in_thread(work, buffer=QUEUE_DEPTH, name="wav2lip-generate")
        with contextlib.closing(batches):  # closing stops the worker after the batch it is computing
            for batch in batches:
                yield from self._compose(track, batch, enhance)

    def _generate(
        self, track: FaceTrack, mel: npt.NDArray[np.float32], emit: Emit[_Generated], stopped: threading.Event
    ) -> None:
        """Worker: run the network over all frames, a fixed-size batch at a time."""
        crops: dict[int, npt.NDArray[np.uint8]] = {}  # avatar frame -> its 96x96 face crop
        n_frames = mel.shape[0]
        for start in range(0, n_frames, self.batch_size):
            if stopped.is_set():
                return
            numbers = range(start, min(start + self.batch_size, n_frames))
            faces = np.stack([self._crop(track, track.index(i), crops) for i in numbers])
            emit(_Generated(start=start, mouths=self.generate(mel[numbers.start : numbers.stop], faces)))

    def render_batch(
        self,
        track: FaceTrack,
        start: int,
        mel: npt.NDArray[np.float32],
        *,
        enhance: bool,
        crops: dict[int, npt.NDArray[np.uint8]],
    ) -> list[Frame]:
        """Output frames `start .. start + len(mel)` from their (n, 1, 80, 16) mel windows, in one network call.

        The same crop, network and paste-back as a whole-clip render, so the frames are the same.
        `crops` caches the avatar's face crops across calls (the caller keeps it per avatar).
        """
        numbers = range(start, start + mel.shape[0])
        faces = np.stack([self._crop(track, track.index(i), crops) for i in numbers])
        return self._compose(track, _Generated(start=start, mouths=self.generate(mel, faces)), enhance)

    def generate(self, mel: npt.NDArray[np.float32], faces: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """Run the network on up to `batch_size` frames (padded to exactly `batch_size` when compiled).

        Args:
            mel: (n, 1, 80, 16) mel windows.
            faces: (n, 96, 96, 3) BGR uint8 face crops; each is its own reference, its lower half is masked here.

        Returns:
            (n, 96, 96, 3) BGR uint8 generated faces.
        """
        n = faces.shape[0]
        if not 0 < n <= self.batch_size or mel.shape[0] != n:
            raise ValueError(f"need 1..{self.batch_size} frames with one mel window each, got {n} and {mel.shape[0]}")
        pad = self.batch_size - n if self.compiled else 0
        if pad:  # repeat the last frame: a compiled graph sees the same shapes on every call
            faces = np.concatenate([faces, np.repeat(faces[-1:], pad, axis=0)])
            mel = np.concatenate([mel, np.repeat(mel[-1:], pad, axis=0)])
        reference = torch.from_numpy(faces).permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, 96, 96)
        masked = reference.clone()
        masked[:, :, FACE_SIZE // 2 :] = 0  # hide the mouth half: the network must draw it from the audio
        x = torch.cat([masked, reference], dim=1).to(self.device.torch_device)
        m = torch.from_numpy(mel).to(self.device.torch_device)
        with torch.inference_mode(), self.device.autocast(self.bf16):
            out = self._net(m, x)
            pixels: npt.NDArray[np.float32] = (out[:n].float() * 255.0).permute(0, 2, 3, 1).cpu().numpy()
        return pixels.astype(np.uint8)  # truncation, as upstream (`pred.astype(np.uint8)`)

    @staticmethod
    def _crop(track: FaceTrack, j: int, crops: dict[int, npt.NDArray[np.uint8]]) -> npt.NDArray[np.uint8]:
        crop = crops.get(j)
        if crop is None:
            y1, y2, x1, x2 = (int(v) for v in track.boxes[j])
            crop = np.asarray(cv2.resize(track.frames[j][y1:y2, x1:x2], (FACE_SIZE, FACE_SIZE)), np.uint8)
            crops[j] = crop
        return crop

    def _compose(self, track: FaceTrack, batch: _Generated, enhance: bool) -> list[Frame]:
        """Paste each generated face back into its box of a copy of the avatar frame; then GFPGAN if asked."""
        sources = [track.index(batch.start + k) for k in range(len(batch.mouths))]
        frames: list[Frame] = []
        for j, mouth in zip(sources, batch.mouths, strict=True):
            y1, y2, x1, x2 = (int(v) for v in track.boxes[j])
            frame = track.frames[j].copy()
            frame[y1:y2, x1:x2] = cv2.resize(mouth, (x2 - x1, y2 - y1))
            frames.append(frame)
        if enhance:
            assert self.enhancer is not None and track.align is not None  # checked in frames()
            frames = self.enhancer.enhance(frames, [track.align[j] for j in sources])
        return frames
