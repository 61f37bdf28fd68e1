"""Piper (VITS exported to ONNX) voices: fast on CPU, speed through the model's length scale."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from comps.core.audio import resample
from comps.tts.backends.base import DEFAULT_VOICE, Samples, VoiceError
from comps.tts.weights import PiperFiles

logger = logging.getLogger(__name__)

# Piper itself phonemizes sentence by sentence with espeak-ng; a few hundred characters per call
# keeps one ONNX pass short so the first chunk of a stream is ready quickly.
PIPER_CHUNK_CHARS = 400


def find_piper_voices(folder: Path | None) -> dict[str, PiperFiles]:
    """Every `<name>.onnx` with its `<name>.onnx.json` in `folder`, keyed by `<name>`.

    Raises:
        VoiceError: an `.onnx` file without its config.
    """
    if folder is None:
        return {}
    voices: dict[str, PiperFiles] = {}
    for model in sorted(folder.glob("*.onnx")):
        config = model.with_name(f"{model.name}.json")
        if not config.is_file():
            raise VoiceError(f"Piper voice {model} has no config {config.name} beside it")
        voices[model.stem] = PiperFiles(model=model, config=config)
    return voices


def _load_voice(files: PiperFiles, *, use_cuda: bool, threads: int) -> Any:
    """A PiperVoice with our ONNX Runtime options.

    Raises:
        VoiceError: the config or the model cannot be loaded (names the file).
    """
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    # Busy-waiting worker threads pay off only on idle dedicated cores; beside ASR, LLM and
    # animation on one host they steal CPU (measured RTF 0.49 with spinning, 0.27 without, on 2 busy cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
    try:
        config = PiperConfig.from_dict(json.loads(files.config.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as exc:
        raise VoiceError(f"Piper voice config {files.config} is unreadable: {exc}") from exc
    try:
        session = onnxruntime.InferenceSession(str(files.model), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for a bad model file
        raise VoiceError(f"Piper voice model {files.model} could not be loaded: {exc}") from exc
    return PiperVoice(session=session, config=config)


class PiperBackend:
    """One or more loaded Piper voices; `default` is the configured voice."""

    def __init__(self, *, voices: dict[str, PiperFiles], use_cuda: bool = False, threads: int = 0) -> None:
        """Load every voice (an ONNX session each).

        Args:
            voices: name -> files; must contain `default`.
            use_cuda: run ONNX Runtime on CUDA (needs onnxruntime-gpu).
            threads: ONNX Runtime intra-op threads; 0 lets it choose (one per physical core).
        """
        if DEFAULT_VOICE not in voices:
            raise VoiceError("the Piper voices must include a 'default' voice")
        self._voices: dict[str, Any] = {}
        loaded: dict[Path, Any] = {}  # one ONNX session per file, however many names point at it
        for name, files in voices.items():
            if files.model not in loaded:
                logger.info("loading Piper voice %s from %s", name, files.model)
                loaded[files.model] = _load_voice(files, use_cuda=use_cuda, threads=threads)
            self._voices[name] = loaded[files.model]
        # Every voice is returned at the default voice's rate (22050 Hz for "medium" voices).
        self.sample_rate = int(self._voices[DEFAULT_VOICE].config.sample_rate)
        self.max_chunk_chars = PIPER_CHUNK_CHARS

    @property
    def voices(self) -> list[str]:
        """`default`, then the other voice names in alphabetical order."""
        return [DEFAULT_VOICE, *sorted(name for name in self._voices if name != DEFAULT_VOICE)]

    def synthesize(self, chunks: list[str], *, voice: str, speed: float) -> list[Samples]:
        """Speak each chunk with `voice`; `speed` divides the voice's length scale (pitch unchanged)."""
        from piper import SynthesisConfig

        model = self._voices[voice]
        base_scale = float(model.config.length_scale)
        config = SynthesisConfig(length_scale=base_scale / speed)
        rate = int(model.config.sample_rate)
        out: list[Samples] = []
        for chunk in chunks:
            # Piper yields one AudioChunk per sentence espeak finds; a chunk with nothing to say yields none.
            parts = [part.audio_float_array for part in model.synthesize(chunk, syn_config=config)]
            audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)
            out.append(resample(audio, rate, self.sample_rate))
        return out
