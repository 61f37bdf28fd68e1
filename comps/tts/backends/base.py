"""The narrow interface between the TTS service and a speech model."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]

DEFAULT_VOICE = "default"


class TtsBackend(Protocol):
    """A loaded speech model with one or more voices.

    Attributes:
        sample_rate: the rate (Hz) of every array `synthesize` returns.
        max_chunk_chars: the longest text chunk the model handles well in one pass.
    """

    sample_rate: int
    max_chunk_chars: int

    @property
    def voices(self) -> list[str]:
        """The voice names this backend accepts, `default` first."""
        ...

    def synthesize(self, chunks: list[str], *, voice: str, speed: float) -> list[Samples]:
        """Speak each chunk (batched where the model allows); blocking, run it in a worker thread.

        Args:
            chunks: non-empty text pieces of at most `max_chunk_chars` characters.
            voice: one of `voices`.
            speed: tempo factor, 1.0 normal, 2.0 twice as fast; pitch is kept.

        Returns:
            One mono float32 array in [-1, 1] at `sample_rate` per chunk, in order.
        """
        ...


class VoiceError(ValueError):
    """A voice file is unusable (wrong shape, missing config); raised at load time, naming the file."""
