"""openai-whisper backend: OpenAI's reference PyTorch implementation (OPEA's design default)."""

from __future__ import annotations

import logging
import threading
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
from comps.asr.languages import LANGUAGES
from comps.asr.settings import AsrSettings
from comps.core.weights import WeightSpec, resolve_weight

logger = logging.getLogger(__name__)


def checkpoint_spec(model: str) -> WeightSpec:
    """Where an official checkpoint (`tiny.en`, `small`, `large-v3`, ...) comes from.

    The URLs and their SHA-256 digests (the URL's second-to-last part) are openai-whisper's own.

    Raises:
        ValueError: `model` is not an official model name.
    """
    import whisper

    url: str | None = whisper._MODELS.get(model)
    if url is None:
        raise ValueError(
            f"ASR_MODEL={model!r} is neither a checkpoint file nor an openai-whisper model "
            f"({', '.join(whisper.available_models())})"
        )
    return WeightSpec(
        component=COMPONENT, filename=f"openai-whisper/{url.rsplit('/', 1)[1]}", url=url, sha256=url.split("/")[-2]
    )


def locate_checkpoint(settings: AsrSettings) -> Path:
    """The `.pt` checkpoint for `settings.model`: a local file, or an official name looked up in the cache.

    Raises:
        WeightsMissingError: not in the cache and not downloadable here (offline or no network).
        ValueError: the name is neither a file nor an official model name.
    """
    local = Path(settings.model).expanduser()
    if local.is_file():
        return local
    return resolve_weight(
        checkpoint_spec(settings.model), explicit=None, cache_dir=settings.model_cache_dir, offline=settings.offline
    )


class OpenAIWhisperBackend:
    """A loaded `whisper.model.Whisper`."""

    def __init__(self, *, model: Any, model_name: str, beam_size: int, fp16: bool) -> None:
        """Wrap a loaded model (already on its device, in eval mode)."""
        self._model = model
        self._model_name = model_name
        self._beam_size = beam_size
        self._fp16 = fp16
        self._languages = frozenset(LANGUAGES) if model.is_multilingual else frozenset({"en"})
        # openai-whisper installs its key/value-cache hooks on the shared model for each decode,
        # so two decodes at once would read each other's caches: one at a time.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, settings: AsrSettings) -> OpenAIWhisperBackend:
        """Locate (downloading when allowed) and load the checkpoint named by the settings."""
        import whisper

        from comps.core.device import resolve_device

        device = resolve_device(settings.device)
        if device.kind == "hpu":
            raise RuntimeError("openai-whisper does not run on Gaudi; use ASR_BACKEND=transformers with ASR_DEVICE=hpu")
        checkpoint = locate_checkpoint(settings)
        logger.info("loading openai-whisper checkpoint %s on %s", checkpoint, device.kind)
        model = whisper.load_model(str(checkpoint), device=device.torch_device).eval()
        return cls(
            model=model, model_name=served_name(settings), beam_size=settings.beam_size, fp16=device.kind == "cuda"
        )

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
        """Transcribe all of `audio`; `whisper.transcribe` walks it in 30 s windows."""
        import whisper

        with self._lock:
            result = whisper.transcribe(
                self._model,
                audio,
                verbose=None,  # no printing, no progress bar
                temperature=fallback_temperatures(temperature),
                initial_prompt=prompt or None,
                language=language,
                beam_size=self._beam_size,
                fp16=self._fp16,
            )
        segments = [
            Segment(
                start=float(item["start"]),
                end=float(item["end"]),
                text=str(item["text"]),
                tokens=tuple(int(t) for t in item["tokens"]),
                temperature=float(item["temperature"]),
                avg_logprob=float(item["avg_logprob"]),
                compression_ratio=float(item["compression_ratio"]),
                no_speech_prob=float(item["no_speech_prob"]),
            )
            for item in result["segments"]
        ]
        return Transcript(
            text=join_segments(segments),
            language=result.get("language"),
            duration_s=audio.size / SAMPLE_RATE,
            segments=segments,
        )
