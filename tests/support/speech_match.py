"""Whether two recordings say the same words: log-mel frames aligned by dynamic time warping.

Piper samples its phoneme durations and its noise (VITS `noise_scale`, `noise_w`) afresh on every
call, so the same text spoken twice differs sample by sample and in length by up to ~70 ms: a waveform
correlation cannot tell "the same sentence again" from "another sentence". Aligned mel spectra can:
measured on the Piper voice here, the same text twice is at distance ~0.03, two different sentences
at >= 0.18 (`SAME_SPEECH_MAX` sits between).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
HOP = 320  # 20 ms per compared frame (Whisper's 10 ms frames, every other one)
SAME_SPEECH_MAX = 0.1
"""Above this, two recordings do not say the same words (same text: ~0.03; different: >= 0.18)."""


@functools.cache
def _extractor() -> Any:
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor(feature_size=80)


def mel_frames(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Unit-norm, mean-removed log-mel vectors, one per 20 ms: shape (frames, 80)."""
    mel = np.asarray(_extractor()(audio), np.float64)[:, : audio.size // 160 : 2]
    mel = mel - mel.mean(axis=1, keepdims=True)
    return (mel / (np.linalg.norm(mel, axis=0, keepdims=True) + 1e-8)).T


def speech_distance(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """DTW distance of two `mel_frames` sequences: mean cosine distance along the best monotonic alignment.

    Computed one anti-diagonal at a time (each cell needs its left, upper and upper-left neighbours,
    which all lie on the two diagonals before it), so the loop runs n + m times, not n * m.
    """
    cost = 1.0 - a @ b.T
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    total[0, 0] = 0.0
    for diagonal in range(2, n + m + 1):
        i = np.arange(max(1, diagonal - m), min(n, diagonal - 1) + 1)
        j = diagonal - i
        best = np.minimum(np.minimum(total[i - 1, j], total[i, j - 1]), total[i - 1, j - 1])
        total[i, j] = cost[i - 1, j - 1] + best
    return float(total[n, m] / (n + m))
