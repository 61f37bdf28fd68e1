"""faster-whisper backend: Whisper on CTranslate2, int8 on CPU, the fast CPU choice."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from comps.asr.backends.base import (
    COMPONENT,
    SAMPLE_RATE,
    Audio,
    Segment,
    Transcript,
    fallback_temperatures,
    join_segments,
    served_name,
)
from comps.asr.embedded import embedded_model
from comps.asr.languages import LANGUAGES
from comps.asr.settings import AsrSettings
from comps.core.embedded import embedded_name
from comps.core.weights import resolve_snapshot

logger = logging.getLogger(__name__)


def _known_repos() -> dict[str, str]:
    from faster_whisper import utils

    # Model size -> Hugging Face repo of its CTranslate2 conversion, as faster-whisper itself maps them.
    repos: dict[str, str] = getattr(utils, "_MODELS", {})
    return repos


def locate_model(settings: AsrSettings) -> Path:
    """The CTranslate2 model folder for `settings.model`: an embedded model, a local folder, a size or a repo id.

    Raises:
        WeightsMissingError: not on disk and not downloadable here (offline or no network).
        ValueError: the name is neither a folder, a known size nor a repo id.
    """
    embedded = embedded_name(settings.model)
    if embedded is not None:
        return embedded_model(embedded, cache_dir=settings.model_cache_dir)
    local = Path(settings.model).expanduser()
    if local.is_dir():
        return local
    repo = _known_repos().get(settings.model) or (settings.model if "/" in settings.model else None)
    if repo is None:
        raise ValueError(
            f"ASR_MODEL={settings.model!r} is neither a folder, a faster-whisper size "
            f"({', '.join(sorted(_known_repos()))}) nor a Hugging Face repo id"
        )
    return resolve_snapshot(
        repo, component=COMPONENT, explicit=None, cache_dir=settings.model_cache_dir, offline=settings.offline
    )


def _device_and_compute(settings: AsrSettings) -> tuple[str, str]:
    import ctranslate2

    if settings.device == "hpu":
        raise RuntimeError("faster-whisper cannot run on Gaudi; use ASR_BACKEND=transformers with ASR_DEVICE=hpu")
    device = settings.device
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute = settings.compute_type
    if compute == "auto":
        compute = "float16" if device == "cuda" else "int8"
    return device, compute


class FasterWhisperBackend:
    """A loaded CTranslate2 Whisper model."""

    def __init__(self, *, model: Any, model_name: str, beam_size: int) -> None:
        """Wrap a loaded `faster_whisper.WhisperModel`."""
        self._model = model
        self._model_name = model_name
        self._beam_size = beam_size
        # ["en"] for English-only models, every Whisper language code otherwise.
        self._languages = frozenset(code for code in model.supported_languages if code in LANGUAGES)

    @classmethod
    def load(cls, settings: AsrSettings) -> FasterWhisperBackend:
        """Locate (downloading when allowed) and load the model named by the settings."""
        from faster_whisper import WhisperModel

        folder = locate_model(settings)
        device, compute = _device_and_compute(settings)
        logger.info("loading faster-whisper model from %s on %s (%s)", folder, device, compute)
        model = WhisperModel(
            str(folder),
            device=device,
            compute_type=compute,
            cpu_threads=settings.cpu_threads,
            num_workers=settings.max_concurrency,
        )
        return cls(model=model, model_name=served_name(settings), beam_size=settings.beam_size)

    @property
    def model_name(self) -> str:
        """The served model name."""
        return self._model_name

    @property
    def languages(self) -> frozenset[str]:
        """The language codes the model can transcribe."""
        return self._languages

    def transcribe(
        self, audio: Audio, *, language: str | None, prompt: str | None, temperature: float | None
    ) -> Transcript:
        """Transcribe all of `audio`; faster-whisper walks it in 30 s windows."""
        pieces, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=self._beam_size,
            temperature=list(fallback_temperatures(temperature)),
            initial_prompt=prompt or None,
        )
        segments = [
            Segment(
                start=float(piece.start),
                end=float(piece.end),
                text=piece.text,
                tokens=tuple(piece.tokens),
                temperature=piece.temperature,
                avg_logprob=piece.avg_logprob,
                compression_ratio=piece.compression_ratio,
                no_speech_prob=piece.no_speech_prob,
            )
            for piece in pieces  # a generator: decoding happens here
        ]
        return Transcript(
            text=join_segments(segments),
            language=info.language,
            duration_s=audio.size / SAMPLE_RATE,
            segments=segments,
        )
