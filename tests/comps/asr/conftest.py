"""Fixtures for the ASR tests: the real faster-whisper tiny.en model and real Piper speech."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from support.models import speak, whisper_tiny_dir

from comps.asr.backends.base import Audio, Transcript
from comps.asr.backends.faster import FasterWhisperBackend
from comps.asr.settings import AsrSettings

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please turn off the lights in the kitchen before you leave.",
    "My favorite season of the year is autumn because the leaves change color.",
)


def tiny_settings(cache_dir: Path, **overrides: object) -> AsrSettings:
    """Settings serving the real tiny.en CTranslate2 model from its package folder, offline."""
    values: dict[str, object] = {
        "backend": "faster-whisper",
        "model": str(whisper_tiny_dir()),
        "served_model_name": "tiny.en",
        "model_cache_dir": cache_dir,
        "offline": True,
        "device": "cpu",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return AsrSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def asr_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("asr-cache")


@pytest.fixture(scope="session")
def make_settings(asr_cache: Path) -> Callable[..., AsrSettings]:
    """`make_settings(**overrides)`: tiny.en settings with some fields changed."""
    return lambda **overrides: tiny_settings(asr_cache, **overrides)


@pytest.fixture(scope="session")
def faster_backend(asr_cache: Path) -> FasterWhisperBackend:
    return FasterWhisperBackend.load(tiny_settings(asr_cache))


@pytest.fixture(scope="session")
def spoken() -> dict[str, Audio]:
    """Each sentence spoken by the real Piper voice, 16 kHz mono float32."""
    return {sentence: speak(sentence) for sentence in SENTENCES}


@pytest.fixture(scope="session")
def long_speech(spoken: dict[str, Audio]) -> tuple[Audio, str]:
    """Over 30 s of speech: every sentence, a closing sentence, with 2.5 s pauses; and its text."""
    closing = "Finally the orchestra played a beautiful melody for the audience."
    texts = [*spoken, *spoken, closing]
    pause = np.zeros(int(2.5 * 16_000), dtype=np.float32)
    parts = [part for text in texts for part in (spoken[text] if text in spoken else speak(text), pause)]
    audio = np.concatenate(parts).astype(np.float32)
    assert audio.size / 16_000 > 30.0, audio.size / 16_000
    return audio, " ".join(texts)


class GatedBackend:
    """Wraps a real backend: records what each call asked for and can hold calls until released."""

    def __init__(self, inner: FasterWhisperBackend, *, hold: bool = False) -> None:
        self.inner = inner
        self.calls: list[dict[str, object]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def languages(self) -> frozenset[str]:
        return self.inner.languages

    def transcribe(
        self, audio: Audio, *, language: str | None, prompt: str | None, temperature: float | None
    ) -> Transcript:
        self.calls.append({"language": language, "prompt": prompt, "temperature": temperature})
        self.entered.set()
        assert self.release.wait(30), "the test never released the backend"
        return self.inner.transcribe(audio, language=language, prompt=prompt, temperature=temperature)


@pytest.fixture
def spy(faster_backend: FasterWhisperBackend) -> GatedBackend:
    """The real backend, recording the options of every call."""
    return GatedBackend(faster_backend)


@pytest.fixture
def gated(faster_backend: FasterWhisperBackend) -> Iterator[GatedBackend]:
    """The real backend, holding every call until `gated.release.set()`."""
    backend = GatedBackend(faster_backend, hold=True)
    yield backend
    backend.release.set()
