"""The narrow interface between the ASR service and a Whisper implementation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

COMPONENT = "whisper"
"""The `avatarchat download whisper` component; weights are cached under `<model cache>/whisper/`."""

SAMPLE_RATE = 16_000
"""Every Whisper model takes 16 kHz mono audio."""

if TYPE_CHECKING:
    from comps.asr.settings import AsrSettings

Audio = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Segment:
    """One decoded segment; times in seconds from the start of the audio.

    The decoder statistics are None where a backend does not report them.
    """

    start: float
    end: float
    text: str
    tokens: tuple[int, ...] = ()
    temperature: float | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None


@dataclass(frozen=True)
class Transcript:
    """A whole transcription: the text, the language it was read as, the audio length and the segments."""

    text: str
    language: str | None
    duration_s: float
    segments: list[Segment] = field(default_factory=list)


class AsrBackend(Protocol):
    """A loaded Whisper model. Methods block; the service calls them through its inference queue."""

    @property
    def model_name(self) -> str:
        """The name callers may send as `model` (besides OpenAI's default `whisper-1`)."""
        ...

    @property
    def languages(self) -> frozenset[str]:
        """The language codes the model can transcribe (`{"en"}` for English-only models)."""
        ...

    def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None,
        prompt: str | None,
        temperature: float | None,
    ) -> Transcript:
        """Transcribe all of `audio` (16 kHz mono float32 in [-1, 1], any length).

        Args:
            audio: the samples.
            language: an ISO-639-1 code, or None to detect it.
            prompt: text that conditions the first window (spellings, style).
            temperature: a fixed sampling temperature; None or 0 means greedy/beam decoding
                with Whisper's usual fall-back to higher temperatures on failed windows.
        """
        ...


def fallback_temperatures(temperature: float | None) -> tuple[float, ...]:
    """Whisper's temperature schedule: 0 then 0.2 steps up to 1.0 when a window fails, or one fixed value.

    This is OpenAI's documented behaviour for `temperature=0` (or absent).
    """
    if temperature is None or temperature == 0:
        return (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    return (float(temperature),)


def served_name(settings: AsrSettings) -> str:
    """The model name callers see: ASR_SERVED_MODEL_NAME, else a local path's last part, else ASR_MODEL."""
    if settings.served_model_name:
        return settings.served_model_name
    local = Path(settings.model).expanduser()
    return local.stem if local.is_file() else local.name if local.is_dir() else settings.model


def join_segments(segments: list[Segment]) -> str:
    """The transcript text of a list of segments, without surrounding spaces."""
    return "".join(segment.text for segment in segments).strip()
