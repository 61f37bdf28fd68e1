"""Streams BGR frames straight into ffmpeg: H.264 (libx264, yuv420p, +faststart) with the audio as AAC, one pass."""

from __future__ import annotations

import contextlib
import logging
import subprocess
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from comps.animation.track import Frame
from comps.core.audio import encode_wav

logger = logging.getLogger(__name__)

PRESET = "veryfast"  # libx264 speed/size trade-off: ~3x faster than "medium" at the same CRF, a bit larger
CRF = 20  # libx264 constant quality (lower is better; 18-23 is visually lossless to good)
AUDIO_BITRATE = "128k"


class EncodeError(RuntimeError):
    """ffmpeg failed or could not be started; the message carries the tail of its log."""


def fps_arg(fps: float) -> str:
    """`fps` as an exact ffmpeg rational: 25 -> "25/1", 12.5 -> "25/2"; NTSC rates snap: 29.97 -> "30000/1001"."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    ntsc = round(fps * 1.001)
    if fps != int(fps) and abs(fps * 1.001 - ntsc) < 0.002:  # 23.976, 29.97, 59.94 mean N * 1000/1001
        return f"{ntsc * 1000}/1001"
    rate = Fraction(fps).limit_denominator(1000)
    return f"{rate.numerator}/{rate.denominator}"


def ffmpeg_command(*, ffmpeg: str, width: int, height: int, fps: float, audio: Path, out_path: Path) -> list[str]:
    """The ffmpeg command line: raw bgr24 on stdin + a WAV file -> MP4 (H.264 + AAC)."""
    # yuv420p needs even sides: pad odd ones by one pixel rather than rescale the picture.
    pad = ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"] if width % 2 or height % 2 else []
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-framerate", fps_arg(fps), "-i", "pipe:0",
        "-i", str(audio),
        "-map", "0:v:0", "-map", "1:a:0",
        *pad,
        "-c:v", "libx264", "-preset", PRESET, "-crf", str(CRF), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", AUDIO_BITRATE,
        "-movflags", "+faststart",
        str(out_path),
    ]  # fmt: skip


class VideoEncoder:
    """A running ffmpeg process fed frame by frame; use as a context manager.

    The audio is written as `workdir/audio.wav` first and muxed in the same pass. Leaving the
    context normally waits for ffmpeg and raises EncodeError if it failed; leaving with an
    exception kills ffmpeg and removes the partial output.
    """

    def __init__(
        self,
        *,
        out_path: Path,
        width: int,
        height: int,
        fps: float,
        audio: npt.NDArray[np.float32],
        sample_rate: int,
        workdir: Path,
        ffmpeg: str = "ffmpeg",
    ) -> None:
        self.out_path = out_path
        self.size = (height, width)
        workdir.mkdir(parents=True, exist_ok=True)
        self._audio = workdir / "audio.wav"
        self._audio.write_bytes(encode_wav(audio, sample_rate))
        self._log_path = workdir / "ffmpeg.log"
        self._command = ffmpeg_command(
            ffmpeg=ffmpeg, width=width, height=height, fps=fps, audio=self._audio, out_path=out_path
        )
        self._proc: subprocess.Popen[bytes] | None = None
        self.frames = 0

    def __enter__(self) -> VideoEncoder:
        self._log = self._log_path.open("wb")
        try:
            self._proc = subprocess.Popen(
                self._command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log
            )
        except OSError as exc:
            self._log.close()
            raise EncodeError(f"cannot start ffmpeg ({self._command[0]}): {exc}") from exc
        return self

    def write(self, frame: Frame) -> None:
        """Send one BGR uint8 frame of the encoder's size."""
        if frame.shape[:2] != self.size or frame.dtype != np.uint8:
            raise ValueError(f"frame must be {self.size} uint8, got {frame.shape} {frame.dtype}")
        assert self._proc is not None and self._proc.stdin is not None, "use VideoEncoder as a context manager"
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError as exc:
            self._proc.wait()
            raise EncodeError(f"ffmpeg stopped early: {self._log_tail()}") from exc
        self.frames += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            if exc_type is not None:
                proc.kill()
                proc.wait()
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # ffmpeg is gone: a pending write may fail, the pipe must not leak
                self.out_path.unlink(missing_ok=True)
                return
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            code = proc.wait()
        finally:
            self._log.close()
        if code != 0:
            self.out_path.unlink(missing_ok=True)
            raise EncodeError(f"ffmpeg exited with {code}: {self._log_tail()}")
        logger.debug("encoded %d frames to %s", self.frames, self.out_path)

    def _log_tail(self) -> str:
        text = self._log_path.read_text(errors="replace").strip()
        return text[-2000:] or "(no output)"
