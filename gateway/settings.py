"""Gateway settings: where the four services are, per-stage timeouts, request defaults (OPEA names honoured)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from comps.core.settings import ApiKey, ServiceSettings, env_alias
from megaservice.avatarchatbot import DEFAULT_MAX_TOKENS


class GatewaySettings(ServiceSettings):
    """`GATEWAY_*` variables; OPEA's names are accepted too, and an unset one falls back to its default."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    host: str = Field(default="0.0.0.0", validation_alias=env_alias("GATEWAY_HOST", "MEGA_SERVICE_HOST_IP"))  # noqa: S104
    port: int = Field(default=8888, ge=1, le=65535, validation_alias=env_alias("GATEWAY_PORT", "MEGA_SERVICE_PORT"))

    asr_host: str = Field(default="localhost", validation_alias=env_alias("GATEWAY_ASR_HOST", "WHISPER_SERVER_HOST_IP"))
    asr_port: int = Field(
        default=7066, ge=1, le=65535, validation_alias=env_alias("GATEWAY_ASR_PORT", "WHISPER_SERVER_PORT")
    )
    llm_host: str = Field(default="localhost", validation_alias=env_alias("GATEWAY_LLM_HOST", "LLM_SERVER_HOST_IP"))
    llm_port: int = Field(
        default=9000, ge=1, le=65535, validation_alias=env_alias("GATEWAY_LLM_PORT", "LLM_SERVER_PORT")
    )
    tts_host: str = Field(
        default="localhost", validation_alias=env_alias("GATEWAY_TTS_HOST", "SPEECHT5_SERVER_HOST_IP")
    )
    tts_port: int = Field(
        default=7055, ge=1, le=65535, validation_alias=env_alias("GATEWAY_TTS_PORT", "SPEECHT5_SERVER_PORT")
    )
    animation_host: str = Field(
        default="localhost", validation_alias=env_alias("GATEWAY_ANIMATION_HOST", "ANIMATION_SERVICE_HOST_IP")
    )
    animation_port: int = Field(
        default=9066, ge=1, le=65535, validation_alias=env_alias("GATEWAY_ANIMATION_PORT", "ANIMATION_SERVICE_PORT")
    )

    # Seconds per attempt of each stage; animation renders video on CPU, so it gets the most.
    asr_timeout_s: float = Field(default=60.0, gt=0)
    llm_timeout_s: float = Field(default=120.0, gt=0)
    tts_timeout_s: float = Field(default=60.0, gt=0)
    animation_timeout_s: float = Field(default=600.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    retries: int = Field(default=1, ge=0, le=5, description="extra attempts after 503/502/504/connection refused")

    # The LLM node may be a remote vLLM/TGI/OpenAI endpoint with its own key (docs/security.md).
    llm_api_key: ApiKey = Field(
        default=None, description="the bearer key sent to the LLM node; unset: AVATARCHAT_API_KEY, as to the others"
    )
    llm_model: str | None = Field(default=None, validation_alias=env_alias("GATEWAY_LLM_MODEL", "LLM_MODEL_ID"))
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=1, le=8192)
    system_prompt: str | None = None
    stream_concurrency: int = Field(default=2, ge=1, le=16, description="answer chunks in TTS at once when streaming")
    sentence_min_chars: int = Field(default=24, ge=1)
    public_url: str | None = Field(default=None, description="base URL for video links; the request's when unset")

    # Whole pipelines at once; more wait up to max_queue, beyond that 503 + Retry-After.
    max_concurrency: int = Field(default=4, ge=1, le=64)
    max_queue: int = Field(default=32, ge=0, le=4096)

    # Live conversations over WebRTC (POST /v1/realtime).
    live_max_sessions: int = Field(default=2, ge=0, le=256, description="live sessions at once; 0 turns the mode off")
    live_retry_after_s: float = Field(default=10.0, gt=0, description="Retry-After of the 503 past the limit")
    live_connect_timeout_s: float = Field(default=15.0, gt=0, description="an offer whose media never connect ends")
    live_idle_timeout_s: float = Field(default=300.0, gt=0, description="a session nobody speaks in ends after this")
    live_silence_ms: int = Field(default=600, ge=100, le=5000, description="silence that ends the person's turn")
    live_eager_ms: int = Field(
        default=250, ge=0, le=5000, description="a pause that starts the answer early (held until the turn ends); 0 off"
    )
    live_vad_threshold: float = Field(default=0.5, gt=0, lt=1, description="Silero VAD speech probability")
    live_render_rate: Literal["auto", "full", "half"] = Field(
        default="auto", description="lip-sync at 25 fps, at 12.5 (each frame shown twice), or half once 25 stalls"
    )
    live_buffer_s: float = Field(default=2.0, gt=0, le=30, description="answer video rendered ahead of playback")
    live_history_chars: int = Field(default=6000, ge=0, description="earlier turns kept for the LLM, in characters")
    live_ice_servers: list[str] = Field(
        default_factory=list, description='STUN/TURN URLs as JSON, e.g. ["stun:stun.example.org:3478"]'
    )
    live_turn_username: str | None = None
    live_turn_credential: SecretStr | None = None

    def stage_key(self, stage: str) -> SecretStr | None:
        """The key the gateway sends to `stage`: the LLM's own where one is set, else AVATARCHAT_API_KEY."""
        if stage == "llm" and self.llm_api_key is not None:
            return self.llm_api_key
        return self.service_api_key

    @model_validator(mode="after")
    def _eager_before_the_end(self) -> GatewaySettings:
        if self.live_eager_ms >= self.live_silence_ms:
            raise ValueError(
                f"GATEWAY_LIVE_EAGER_MS ({self.live_eager_ms}) must be shorter than GATEWAY_LIVE_SILENCE_MS "
                f"({self.live_silence_ms}), or 0"
            )
        return self

    # Question limits, checked before any stage runs (the body itself is bounded by GATEWAY_MAX_BODY_BYTES).
    max_text_chars: int = Field(default=8000, ge=1, le=100_000, description="longest typed question, in characters")
    max_audio_bytes: int = Field(
        default=16 * 1024**2, ge=1024, description="largest spoken question (its decoded bytes); ASR bounds its length"
    )
