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
    mel = mel_basis() @ _stft_magnitude(emphasized)
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
