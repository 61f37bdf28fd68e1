"""Wav2Lip's audio front-end (upstream `audio.py` + `hparams.py`, librosa 0.7 behaviour) in numpy, and frame indexing.

16 kHz mono -> pre-emphasis 0.97 -> |STFT| (n_fft 800, hop 200, Hann 800, centered with reflect
padding) -> 80 Slaney mel bands (55-7600 Hz, Slaney area normalisation) -> dB - 20 -> symmetric
normalisation to [-4, 4]. 80 mel frames per second.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

SAMPLE_RATE = 16_000  # Hz
N_FFT = 800  # samples (50 ms)
HOP = 200  # samples (12.5 ms) -> 80 mel frames per second
N_MELS = 80
FMIN, FMAX = 55.0, 7600.0  # Hz
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS = 4.0  # normalised values lie in [-MAX_ABS, MAX_ABS]
MEL_PER_SECOND = SAMPLE_RATE / HOP  # 80.0
WINDOW = 16  # mel frames per video frame's audio window (0.2 s)

FloatArray = npt.NDArray[np.float32]


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale (librosa `htk=False`): linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    mels = hz / f_sp
    log_part = min_log_hz / f_sp + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log_part, mels)


def _mel_to_hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    log_part = min_log_hz * np.exp(logstep * (np.maximum(mels, min_log_mel) - min_log_mel))
    return np.where(mels >= min_log_mel, log_part, f_sp * mels)


@functools.cache
def mel_basis() -> npt.NDArray[np.float64]:
    """The (80, 401) triangular mel filterbank with Slaney normalisation (librosa.filters.mel's defaults)."""
    fft_freqs = np.linspace(0.0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(FMIN)), _hz_to_mel(np.array(FMAX)), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # Slaney: each band has unit area
    weights.setflags(write=False)
    return weights


@functools.cache
def _hann() -> npt.NDArray[np.float64]:
    """Periodic Hann window of N_FFT samples (scipy `get_window("hann", fftbins=True)`, as librosa uses)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)


def _stft_magnitude(wav: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """|STFT| as (1 + N_FFT/2, frames), centered with reflect padding of N_FFT/2 on both sides."""
    padded = np.pad(wav, N_FFT // 2, mode="reflect")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    return np.abs(np.fft.rfft(frames * _hann(), axis=1)).T


def melspectrogram(wav: npt.NDArray[np.floating]) -> FloatArray:
    """The normalised mel spectrogram Wav2Lip was trained on.

    Args:
        wav: mono samples at 16 kHz, float in [-1, 1]; at least 401 samples (reflect padding needs them).

    Returns:
        (80, 1 + len(wav) // 200) float32 in [-4, 4].
    """
    samples = np.asarray(wav, dtype=np.float64)
    if samples.ndim != 1 or samples.size <= N_FFT // 2:
        raise ValueError(f"need mono audio of more than {N_FFT // 2} samples, got shape {samples.shape}")
    emphasized = lfilter([1.0, -PREEMPHASIS], [1.0], samples)
    return _normalised(mel_basis() @ _stft_magnitude(emphasized))


def _normalised(mel: npt.NDArray[np.float64]) -> FloatArray:
    """Mel magnitudes -> dB - 20 -> [-4, 4], float32."""
    db = 20.0 * np.log10(np.maximum(1e-5, mel)) - REF_LEVEL_DB
    normalised = 2 * MAX_ABS * (db - MIN_LEVEL_DB) / -MIN_LEVEL_DB - MAX_ABS
    return np.clip(normalised, -MAX_ABS, MAX_ABS).astype(np.float32)


def frame_count(n_samples: int, fps: float) -> int:
    """Video frames for `n_samples` of 16 kHz audio at `fps`: the duration rounded half up to whole frames (≥ 1)."""
    return max(1, math.floor(n_samples * fps / SAMPLE_RATE + 0.5))


def window_starts(n_frames: int, n_mel: int, fps: float) -> npt.NDArray[np.int64]:
    """First mel frame of each video frame's 16-frame window.

    Frame `i` starts at `int(i * 80 / fps)`; windows that would run past the end take the final 16
    frames (upstream's rule for the last window).
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    starts = np.array([int(i * MEL_PER_SECOND / fps) for i in range(n_frames)], dtype=np.int64)
    return np.minimum(starts, max(0, n_mel - WINDOW))


def mel_windows(wav: npt.NDArray[np.floating], fps: float) -> FloatArray:
    """One (1, 80, 16) mel window per video frame: (n_frames, 1, 80, 16) float32, n_frames from the duration.

    Audio too short for one window (< 0.2 s) is padded with silence (zeros), so silence and very
    short clips still render.
    """
    samples = np.asarray(wav, dtype=np.float32)
    n_frames = frame_count(samples.size, fps)
    minimum = (WINDOW - 1) * HOP  # samples giving exactly 16 mel frames
    if samples.size < minimum:
        samples = np.pad(samples, (0, minimum - samples.size))
    mel = melspectrogram(samples)
    starts = window_starts(n_frames, mel.shape[1], fps)
    index = starts[:, None] + np.arange(WINDOW)[None, :]  # (n_frames, 16)
    return np.ascontiguousarray(mel[:, index].transpose(1, 0, 2)[:, None])


class MelStream:
    """The mel spectrogram of speech that arrives in pieces, column by column as each becomes final.

    Column `j` is centred on sample `j * HOP`; its STFT window ends `N_FFT / 2` samples later, so it is
    final (equal to the whole clip's column) once that much audio exists. `finish()` adds the last
    columns, whose windows take the clip's end reflect padding, exactly as `melspectrogram` does.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._samples = np.zeros(0, dtype=np.float64)
        self._emphasized = np.zeros(0, dtype=np.float64)
        self._columns: list[FloatArray] = []
        self.finished = False

    @property
    def samples(self) -> int:
        """Audio samples pushed so far."""
        return int(self._samples.size)

    @property
    def columns(self) -> int:
        """Final mel columns so far."""
        return sum(block.shape[1] for block in self._columns)

    def push(self, samples: npt.NDArray[np.floating]) -> None:
        """Add the next samples (16 kHz mono, float in [-1, 1]) and compute every column they complete."""
        if self.finished:
            raise ValueError("push after finish")
        chunk = np.asarray(samples, dtype=np.float64).ravel()
        if not chunk.size:
            return
        previous = self._samples[-1:] if self._samples.size else None
        self._samples = np.concatenate([self._samples, chunk])
        emphasized = chunk.copy()
        emphasized[1 if previous is None else 0 :] -= PREEMPHASIS * (
            chunk[:-1] if previous is None else np.concatenate([previous, chunk[:-1]])
        )
        self._emphasized = np.concatenate([self._emphasized, emphasized])
        # Column j needs samples up to j*HOP + N_FFT/2; the left reflect padding needs N_FFT/2 + 1.
        if self._emphasized.size > N_FFT // 2:
            self._compute((self._emphasized.size - N_FFT // 2) // HOP + 1)

    def finish(self) -> None:
        """The speech has ended: compute the last columns (1 + samples // HOP in all)."""
        if not self.finished:
            self.finished = True
            if self._emphasized.size > N_FFT // 2:
                self._compute(1 + self._emphasized.size // HOP)

    def _compute(self, end: int) -> None:
        start = self.columns
        if end <= start:
            return
        # The padded signal as `melspectrogram` builds it; only its right end differs before `finish`.
        left = self._emphasized[1 : N_FFT // 2 + 1][::-1]
        right = self._emphasized[-N_FFT // 2 - 1 : -1][::-1] if self.finished else np.zeros(0)
        first = start * HOP  # index into the padded signal of column `start`'s window
        needed = (end - 1) * HOP + N_FFT
        padded = np.concatenate([left, self._emphasized, right])[first:needed]
        frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][: end - start]
        magnitude = np.abs(np.fft.rfft(frames * _hann(), axis=1)).T
        self._columns.append(_normalised(mel_basis() @ magnitude))

    def window(self, start: int) -> FloatArray:
        """Mel columns `start .. start + WINDOW` as one (80, 16) window (they must be final)."""
        if start + WINDOW > self.columns:
            raise ValueError(f"columns {start}..{start + WINDOW} are not final yet ({self.columns} are)")
        if len(self._columns) > 1:
            self._columns = [np.concatenate(self._columns, axis=1)]
        return self._columns[0][:, start : start + WINDOW]
