"""Which backend serves: one literal mapping from `ASR_BACKEND` to how to locate and load it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from comps.asr.backends import faster, hf, openai_whisper
from comps.asr.backends.base import AsrBackend
from comps.asr.settings import AsrSettings


@dataclass(frozen=True)
class BackendEntry:
    """How one backend finds its weights (downloading when allowed) and loads them."""

    locate: Callable[[AsrSettings], Path]
    load: Callable[[AsrSettings], AsrBackend]


BACKENDS: dict[str, BackendEntry] = {
    "openai-whisper": BackendEntry(
        locate=openai_whisper.locate_checkpoint, load=openai_whisper.OpenAIWhisperBackend.load
    ),
    "faster-whisper": BackendEntry(locate=faster.locate_model, load=faster.FasterWhisperBackend.load),
    "transformers": BackendEntry(locate=hf.locate_model, load=hf.TransformersWhisperBackend.load),
}


def load_backend(settings: AsrSettings) -> AsrBackend:
    """Load the backend named by `ASR_BACKEND` (blocking: call it from a worker thread)."""
    return BACKENDS[settings.backend].load(settings)
