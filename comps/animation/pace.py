"""How fast this process makes streamed frames, and so the rate a stream that names none renders at.

A stream is played while it is made: a machine that renders slower than the video plays stalls
on every answer. Wav2Lip's pipeline makes ~55 frames/s on two AMX Xeon cores in bf16 but ~12 on
two AVX2 cores in fp32, under the 25 a 25 fps stream needs. Where the measured pace is under
`margin` times the full rate, streams render at half of it: each frame covers 80 ms of speech
instead of 40, half the work, and the answer plays without freezing. The pace is measured on the
streams this process renders (their frames over the seconds spent rendering and encoding them,
waits excluded), seeded at start by a short warm-up render (`AnimationService.warm_up`).
"""

from __future__ import annotations

import threading
from typing import Literal

StreamRate = Literal["auto", "full", "half"]


class RenderPace:
    """The measured frames per second of streamed renders in this process (a moving average), and the rate to use."""

    def __init__(self, *, margin: float = 1.2, weight: float = 0.5) -> None:
        """No measurement yet (the full rate).

        Args:
            margin: how much faster than the video's rate renders must be for the full rate (the LLM
                and TTS share the cores during an answer).
            weight: the newest measurement's share of the average.
        """
        self.margin = margin
        self.weight = weight
        self.frames_per_s: float | None = None
        self._lock = threading.Lock()

    def observe(self, frames: int, seconds: float) -> None:
        """A render made `frames` frames in `seconds` of rendering (any thread)."""
        if frames <= 0 or seconds <= 0:
            return
        measured = frames / seconds
        with self._lock:
            last = self.frames_per_s
            self.frames_per_s = measured if last is None else self.weight * measured + (1 - self.weight) * last

    def rate(self, fps: float, setting: StreamRate) -> float:
        """The rate a stream asking for no rate renders at: `fps` or half of it (`setting`: ANIMATION_STREAM_RATE)."""
        if setting == "half":
            return fps / 2
        measured = self.frames_per_s
        if setting == "full" or measured is None or measured >= self.margin * fps:
            return fps
        return fps / 2
