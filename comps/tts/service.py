"""What both endpoints share: input checks, voice names, chunking, queued synthesis, pauses between chunks."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from comps.core.errors import InvalidRequest, Unprocessable
from comps.core.limits import InferenceQueue
from comps.core.settings import SettingsError
from comps.core.text import split_text
from comps.tts.backends.base import Samples, TtsBackend
from comps.tts.settings import TtsSettings

logger = logging.getLogger(__name__)

# OpenAI's voice names. The official client requires a voice, so these select the configured
# default voice unless a voice of that name is installed (then that one is used).
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage", "shimmer", "verse"}
)


@dataclass(frozen=True)
class Speech:
    """Synthesized audio: mono float32 samples at `sample_rate` Hz."""

    samples: Samples
    sample_rate: int


class SpeechService:
    """Turns request text into speech with one backend, one chunk limit and one bounded queue."""

    def __init__(self, *, backend: TtsBackend, settings: TtsSettings) -> None:
        """Wrap a loaded backend.

        Raises:
            SettingsError: `TTS_VOICE` names a voice the backend does not have.
        """
        self.backend = backend
        self.max_text_chars = settings.max_text_chars
        self.chunk_chars = settings.chunk_chars or backend.max_chunk_chars
        self.pause_s = settings.chunk_pause_ms / 1000.0
        self.queue = InferenceQueue(concurrency=settings.max_concurrency, max_waiting=settings.max_queue)
        if settings.voice not in backend.voices:
            raise SettingsError(
                f"TTS_VOICE={settings.voice!r} is not a voice of this backend; voices: {', '.join(backend.voices)}"
            )
        self.default_voice = settings.voice

    @property
    def sample_rate(self) -> int:
        """The backend's native rate in Hz."""
        return self.backend.sample_rate

    def resolve_voice(self, name: str | None) -> str:
        """A request's voice name -> a backend voice; 400 listing the voices when unknown."""
        if name is None or not name.strip():
            return self.default_voice
        if name in self.backend.voices:
            return name
        if name.lower() in OPENAI_VOICES:
            return self.default_voice
        raise InvalidRequest(
            f"unknown voice {name!r}; available voices: {', '.join(self.backend.voices)} "
            f"(OpenAI voice names such as 'alloy' select the default voice {self.default_voice!r})",
            code="unknown_voice",
            param="voice",
        )

    def chunks(self, text: str, *, param: str) -> list[str]:
        """Check the text and split it into model-sized chunks (every word kept, in order)."""
        if not text.strip():
            raise InvalidRequest(f"{param} is empty", code="empty_input", param=param)
        if len(text) > self.max_text_chars:
            raise InvalidRequest(
                f"{param} has {len(text)} characters, over the maximum of {self.max_text_chars}",
                code="text_too_long",
                param=param,
            )
        return split_text(text, max_chars=self.chunk_chars)

    def _pause(self, speed: float) -> Samples:
        return np.zeros(round(self.pause_s / speed * self.sample_rate), dtype=np.float32)

    async def synthesize(self, chunks: list[str], *, voice: str, speed: float) -> Speech:
        """All chunks in one queued backend call (batched where the backend can), joined with pauses.

        Raises:
            Unprocessable: no chunk produced any sound (e.g. the text is only punctuation).
            Unavailable: the queue is full (503 with Retry-After).
        """
        call = functools.partial(self.backend.synthesize, chunks, voice=voice, speed=speed)
        parts = [part for part in await self.queue.run(call) if part.size]
        if not parts:
            raise _nothing_to_say()
        pause = self._pause(speed)
        joined = [piece for part in parts for piece in (pause, part)][1:]
        return Speech(samples=np.concatenate(joined), sample_rate=self.sample_rate)

    async def stream(self, chunks: list[str], *, voice: str, speed: float) -> AsyncIterator[Speech]:
        """Each chunk as soon as it is synthesized (one queued call per chunk); a pause leads every chunk but the first.

        Raises:
            Unprocessable: no chunk produced any sound.
        """
        spoken = False
        for chunk in chunks:
            call = functools.partial(self.backend.synthesize, [chunk], voice=voice, speed=speed)
            (audio,) = await self.queue.run(call)
            if not audio.size:
                continue
            samples = np.concatenate([self._pause(speed), audio]) if spoken else audio
            spoken = True
            yield Speech(samples=samples, sample_rate=self.sample_rate)
        if not spoken:
            raise _nothing_to_say()


def _nothing_to_say() -> Unprocessable:
    return Unprocessable("the text has nothing the voice can speak (only punctuation or symbols?)", code="no_speech")
