"""The OPEA-compatible JSON contracts between services (the orchestrator's typed edges use these)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Contract(BaseModel):
    # Unknown fields are ignored, as OPEA services do, so newer clients keep working.
    model_config = ConfigDict(extra="ignore")


class AsrRequest(_Contract):
    """`POST /v1/asr`: base64 of any audio file."""

    audio: str = Field(description="base64 of an audio file (wav, mp3, flac, ogg, m4a, webm)")
    language: str | None = Field(default=None, description="ISO-639-1 code; detected when absent")


class AsrResponse(_Contract):
    """The transcript."""

    asr_result: str


class TtsRequest(_Contract):
    """`POST /v1/tts`."""

    text: str
    voice: str | None = None


class TtsResponse(_Contract):
    """Base64 of a 16 kHz mono PCM16 WAV."""

    tts_result: str


class AnimationRequest(_Contract):
    """`POST /v1/animation`: OPEA's `byte_str` plus our optional fields."""

    byte_str: str = Field(description="base64 of the speech audio")
    avatar: str | None = Field(default=None, description="avatar id; the service default when absent")
    inference_mode: str | None = Field(default=None, description="wav2lip, wav2lip_gan, wav2lip+gfpgan, ...")
    fps: float | None = Field(default=None, gt=0, le=60)


class AnimationResponse(_Contract):
    """OPEA's `id` and `video_path`, plus a URL the caller can actually fetch."""

    id: str
    video_path: str
    video_url: str | None = None
    duration_s: float | None = None
    frames: int | None = None
    fps: float | None = None
