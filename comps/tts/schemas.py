"""Request and response bodies of the TTS endpoints (OPEA's /v1/tts lives in comps.core.contracts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from comps.core.audio import AudioFormat


class SpeechRequest(BaseModel):
    """OpenAI's `POST /v1/audio/speech` body (OPEA's tts microservice sends the same fields)."""

    # Unknown fields are ignored, as OpenAI's newer clients may send more.
    model_config = ConfigDict(extra="ignore")

    input: str = Field(description="the text to speak")
    model: str | None = Field(default=None, description="accepted and ignored: the served model is configured")
    voice: str | None = Field(
        default=None, description="a voice of GET /v1/voices; OpenAI's names (alloy, echo, ...) mean the default"
    )
    response_format: AudioFormat | None = Field(
        default=None, description="wav, mp3, flac, opus (Ogg) or pcm (s16le); absent: TTS_DEFAULT_RESPONSE_FORMAT"
    )
    speed: float = Field(default=1.0, ge=0.25, le=4.0, description="tempo factor; pitch is kept")
    instructions: str | None = Field(default=None, description="accepted and ignored (no model here takes them)")
    stream_format: Literal["audio", "sse"] = Field(
        default="audio", description="sse: one `speech.audio.delta` event per chunk as it is synthesized"
    )


class VoicesResponse(BaseModel):
    """`GET /v1/voices`."""

    backend: str
    default: str
    voices: list[str]
    sample_rate: int = Field(description="the model's native rate in Hz")
