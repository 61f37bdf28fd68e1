"""transformers backend: Hugging Face Whisper on CPU, CUDA or Gaudi (HPU) through the device layer."""

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
from comps.asr.languages import LANGUAGES
from comps.asr.settings import AsrSettings
from comps.core.device import Device, inference_mode, resolve_device
from comps.core.weights import resolve_snapshot

logger = logging.getLogger(__name__)

# Model sizes that OpenAI publishes as `openai/whisper-<size>` on the Hugging Face hub.
_SIZES = {
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
    "large", "large-v2", "large-v3", "large-v3-turbo",
}  # fmt: skip
_ALIASES = {"turbo": "large-v3-turbo"}

# Whisper reads 30 s windows: 3000 mel frames of 10 ms.
_WINDOW_FRAMES = 3000


def repo_for(model: str) -> str | None:
    """The hub repo id for a size (`small` -> `openai/whisper-small`) or a repo id; None otherwise."""
    size = _ALIASES.get(model, model)
    if size in _SIZES:
        return f"openai/whisper-{size}"
    return model if "/" in model else None


def locate_model(settings: AsrSettings) -> Path:
    """The transformers model folder for `settings.model`: a local folder, a size or a repo id.

    Raises:
        WeightsMissingError: not on disk and not downloadable here (offline or no network).
        ValueError: the name is neither a folder, a known size nor a repo id.
    """
    local = Path(settings.model).expanduser()
    if local.is_dir():
        return local
    repo = repo_for(settings.model)
    if repo is None:
        raise ValueError(f"ASR_MODEL={settings.model!r} is neither a folder, a Whisper size nor a Hugging Face repo id")
    return resolve_snapshot(
        repo, component=COMPONENT, explicit=None, cache_dir=settings.model_cache_dir, offline=settings.offline
    )


class TransformersWhisperBackend:
    """A loaded `WhisperForConditionalGeneration` and its processor."""

    def __init__(self, *, model: Any, processor: Any, device: Device, model_name: str, beam_size: int, bf16: bool):
        """Wrap a loaded model (on `device`, in eval mode) and its `WhisperProcessor`."""
        self._model = model
        self._processor = processor
        self._device = device
        self._model_name = model_name
        self._beam_size = beam_size
        self._bf16 = bf16
        generation = model.generation_config
        self._multilingual = bool(getattr(generation, "is_multilingual", False))
        if self._multilingual:
            # lang_to_id maps "<|en|>" to its token id.
            codes = {token.strip("<|>") for token in getattr(generation, "lang_to_id", {})}
            self._languages = frozenset(code for code in codes if code in LANGUAGES)
        else:
            self._languages = frozenset({"en"})

    @classmethod
    def load(cls, settings: AsrSettings) -> TransformersWhisperBackend:
        """Locate (downloading when allowed) and load the model named by the settings."""
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        folder = locate_model(settings)
        device = resolve_device(settings.device)
        logger.info("loading transformers Whisper from %s on %s", folder, device.kind)
        model: Any = WhisperForConditionalGeneration.from_pretrained(folder)
        model = model.to(device.torch_device).eval()
        # Only the encoder is compiled: its input is always one 3000-frame window (static shapes),
        # while the decoder's length changes every step.
        model.model.encoder = device.compile(model.model.encoder, settings.torch_compile)
        processor = WhisperProcessor.from_pretrained(folder)
        return cls(
            model=model,
            processor=processor,
            device=device,
            model_name=served_name(settings),
            beam_size=settings.beam_size,
            bf16=settings.bf16,
        )

    @property
    def model_name(self) -> str:
        """The served model name."""
        return self._model_name

    @property
    def languages(self) -> frozenset[str]:
        """The language codes the model can transcribe."""
        return self._languages

    def _features(self, audio: Audio) -> Any:
        extractor = self._processor.feature_extractor
        if audio.size > extractor.n_samples:
            # Long-form: keep every frame (no 30 s truncation); generate walks the windows itself.
            return extractor(
                audio,
                sampling_rate=SAMPLE_RATE,
                return_tensors="pt",
                truncation=False,
                padding="longest",
                return_attention_mask=True,
            )
        return extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True)

    def transcribe(
        self, audio: Audio, *, language: str | None, prompt: str | None, temperature: float | None
    ) -> Transcript:
        """Transcribe all of `audio`; long audio goes through transformers' sequential long-form decoding."""
        features = self._features(audio)
        torch_device = self._device.torch_device
        input_features = features.input_features.to(torch_device)
        temperatures = fallback_temperatures(temperature)
        options: dict[str, Any] = {
            "attention_mask": features.attention_mask.to(torch_device),
            "return_timestamps": True,
            "return_segments": True,
            "num_beams": self._beam_size,
            "temperature": temperatures if len(temperatures) > 1 else temperatures[0],
        }
        if len(temperatures) > 1:
            # openai-whisper's thresholds deciding that a window failed and the next temperature is tried.
            options |= {"compression_ratio_threshold": 2.4, "logprob_threshold": -1.0, "no_speech_threshold": 0.6}
        if prompt:
            options["prompt_ids"] = self._processor.get_prompt_ids(prompt, return_tensors="pt").to(torch_device)
        if self._multilingual:
            options["task"] = "transcribe"
            options["language"] = language or self._detect_language(input_features)
        with inference_mode(), self._device.autocast(self._bf16):
            output = self._model.generate(input_features, **options)
        tokenizer = self._processor.tokenizer
        segments = [
            Segment(
                start=float(piece["start"]),
                end=float(piece["end"]),
                text=tokenizer.decode(piece["tokens"], skip_special_tokens=True),
                tokens=tuple(int(t) for t in piece["tokens"].tolist()),
            )
            for piece in output["segments"][0]
        ]
        text = join_segments(segments) or tokenizer.decode(output["sequences"][0], skip_special_tokens=True).strip()
        return Transcript(
            text=text,
            language=options.get("language", "en"),
            duration_s=audio.size / SAMPLE_RATE,
            segments=segments,
        )

    def _detect_language(self, input_features: Any) -> str:
        """The language of the first 30 s window, as a code."""
        with inference_mode(), self._device.autocast(self._bf16):
            token_ids = self._model.detect_language(input_features[..., :_WINDOW_FRAMES])
        token = self._processor.tokenizer.convert_ids_to_tokens(int(token_ids[0]))
        return str(token).strip("<|>")
