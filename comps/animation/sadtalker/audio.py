"""SadTalker's audio front end: the Wav2Lip mel recipe and the 25 fps mel-window indexing."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

# hparams shared by SadTalker and Wav2Lip (src/utils/hparams.py).
SAMPLE_RATE = 16_000
N_FFT = 800  # 50 ms window
HOP = 200  # 12.5 ms hop: 80 mel frames per second
NUM_MELS = 80
FMIN = 55.0
FMAX = 7600.0
PREEMPHASIS = 0.97
MIN_LEVEL_DB = -100.0
REF_LEVEL_DB = 20.0
MAX_ABS_VALUE = 4.0
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
MEL_STEP = 16  # mel frames per video-frame window (200 ms)
MEL_FPS = SAMPLE_RATE / HOP  # 80

FloatArray = npt.NDArray[np.float32]


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    logstep = np.log(6.4) / 27.0
    mel = hz / f_sp
    log_part = min_log_hz / f_sp + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log_part, mel)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@lru_cache(maxsize=1)
def mel_basis() -> npt.NDArray[np.float64]:
    """Return the (80, 401) Slaney-normalised triangular filterbank from 55 to 7600 Hz."""
    fft_freqs = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_pts = np.linspace(_hz_to_mel(np.array(FMIN)), _hz_to_mel(np.array(FMAX)), NUM_MELS + 2)
    hz_pts = _mel_to_hz(mel_pts)
    widths = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]  # Slaney area normalisation
    return weights


def melspectrogram(wav: npt.NDArray[np.floating]) -> FloatArray:
    """Return the normalised log-mel spectrogram (M, 80), time major, ``M = 1 + L // 200``.

    Pre-emphasis, a centred STFT with zero padding (librosa >= 0.9 behaviour) and a periodic
    Hann window, magnitude, mel, dB, then symmetric normalisation to [-4, 4].
    """
    x = np.asarray(wav, dtype=np.float64)
    y = x.copy()
    y[1:] -= PREEMPHASIS * x[:-1]
    padded = np.pad(y, N_FFT // 2)
    frames = 1 + (padded.size - N_FFT) // HOP
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    magnitude = np.abs(np.fft.rfft(padded[index] * window, axis=1))  # (M, 401)
    mel = magnitude @ mel_basis().T
    min_level = 10 ** (MIN_LEVEL_DB / 20)
    db = 20 * np.log10(np.maximum(min_level, mel)) - REF_LEVEL_DB
    norm = 2 * MAX_ABS_VALUE * (db - MIN_LEVEL_DB) / -MIN_LEVEL_DB - MAX_ABS_VALUE
    return np.clip(norm, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32)


def num_video_frames(num_samples: int) -> int:
    """Return the number of 25 fps video frames for 16 kHz audio: ``floor(L / 640)``."""
    return num_samples // SAMPLES_PER_FRAME


def crop_or_pad(wav: npt.NDArray[np.floating]) -> FloatArray:
    """Cut or zero-pad the waveform to a whole number of video frames (``T * 640`` samples)."""
    length = num_video_frames(len(wav)) * SAMPLES_PER_FRAME
    out = np.zeros(length, dtype=np.float32)
    out[: min(length, len(wav))] = wav[:length]
    return out


def window_start(frame: int) -> int:
    """Return the first mel frame of video frame ``frame``: ``trunc(80 (frame - 2) / 25)``."""
    num = MEL_STEP * (frame - 2)
    return -((-num) // 5) if num < 0 else num // 5  # exact trunc(16 (i - 2) / 5)


def indiv_mels(mel: FloatArray, num_frames: int) -> FloatArray:
    """Return per-frame windows (T, 80, 16): 16 mel frames each, indices clamped to [0, M-1]."""
    starts = np.array([window_start(i) for i in range(num_frames)], dtype=np.int64)
    index = np.clip(starts[:, None] + np.arange(MEL_STEP)[None, :], 0, mel.shape[0] - 1)
    return np.ascontiguousarray(mel[index].transpose(0, 2, 1))


def audio_features(wav: npt.NDArray[np.floating]) -> tuple[FloatArray, FloatArray]:
    """Return ``(mel (M, 80), windows (T, 80, 16))`` for 16 kHz mono audio."""
    cut = crop_or_pad(wav)
    mel = melspectrogram(cut)
    return mel, indiv_mels(mel, num_video_frames(len(cut)))
