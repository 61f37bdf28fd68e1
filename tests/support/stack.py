"""The four real services on small real models, served on loopback ports (shared by gateway and UI tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from support.servers import Served

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def real_apps(folder: Path) -> dict[str, FastAPI]:
    """The four real services on the small real models: faster-whisper tiny.en, the tiny test LLM,
    the Piper voice, and Wav2Lip with the deterministic fixture weights."""
    from support.models import piper_voice_paths, whisper_tiny_dir
    from support.tiny_llm import build_tiny_llm
    from support.wav2lip_weights import write_checkpoint

    from comps.animation.app import create_app as animation_app
    from comps.animation.settings import AnimationSettings
    from comps.asr.app import create_app as asr_app
    from comps.asr.settings import AsrSettings
    from comps.llm.app import create_app as llm_app
    from comps.llm.settings import LlmSettings
    from comps.tts.app import create_app as tts_app
    from comps.tts.settings import TtsSettings

    common: dict[str, Any] = {"device": "cpu", "offline": True, "model_cache_dir": folder, "log_level": "WARNING"}
    return {
        "asr": asr_app(AsrSettings(backend="faster-whisper", model=str(whisper_tiny_dir()), beam_size=1, **common)),
        "llm": llm_app(LlmSettings(model_id=str(build_tiny_llm(folder / "tiny-llm")), **common)),
        "tts": tts_app(TtsSettings(backend="piper", model=str(piper_voice_paths().model), **common)),
        "animation": animation_app(
            AnimationSettings(
                checkpoint_path=write_checkpoint(folder / "wav2lip.pth"),
                face=SHARED / "assets" / "avatar_astronaut.png",
                avatar_dir=folder / "avatars",
                output_dir=folder / "videos",
                **common,
            )
        ),
    }


def serve_real_services(folder: Path) -> Iterator[dict[str, Served]]:
    """Start every real service (each `/ready`), yield them by stage, stop them afterwards."""
    apps = real_apps(folder)
    servers: dict[str, Served] = {}
    try:
        for stage, app in apps.items():
            servers[stage] = Served(app).__enter__()
        yield servers
    finally:
        for server in servers.values():
            server.__exit__()
