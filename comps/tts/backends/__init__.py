"""TTS backends and the one mapping that picks a backend by `TTS_BACKEND`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from comps.core.device import resolve_device
from comps.tts.backends.base import DEFAULT_VOICE, TtsBackend

if TYPE_CHECKING:
    from comps.tts.settings import TtsSettings


def load_piper(settings: TtsSettings) -> TtsBackend:
    """The default Piper voice (`TTS_MODEL` or the cached lessac voice) plus every voice in `TTS_VOICES_DIR`."""
    from comps.tts.backends.piper import PiperBackend, find_piper_voices
    from comps.tts.weights import piper_default_voice

    default = piper_default_voice(settings)
    voices = {**find_piper_voices(settings.voices_dir), DEFAULT_VOICE: default}
    # The default voice also answers to its own name, e.g. "en_US-lessac-medium".
    voices.setdefault(default.model.name.removesuffix(".onnx"), default)
    use_cuda = resolve_device(settings.device).kind == "cuda"
    return PiperBackend(voices=voices, use_cuda=use_cuda, threads=settings.onnx_threads)


def load_speecht5(settings: TtsSettings) -> TtsBackend:
    """SpeechT5 + HiFi-GAN with the `default`/`male` x-vectors and any x-vector in `TTS_VOICES_DIR`."""
    from comps.tts.backends.speecht5 import SpeechT5Backend, find_xvectors
    from comps.tts.weights import speecht5_model_dirs, speecht5_speakers

    model_dir, vocoder_dir = speecht5_model_dirs(settings)
    speakers = {**find_xvectors(settings.voices_dir), **speecht5_speakers(settings)}
    return SpeechT5Backend(
        model_dir=model_dir,
        vocoder_dir=vocoder_dir,
        speakers=speakers,
        device=resolve_device(settings.device),
        max_batch=settings.max_batch,
    )


BACKENDS: dict[str, Callable[[TtsSettings], TtsBackend]] = {
    "piper": load_piper,
    "speecht5": load_speecht5,
}
