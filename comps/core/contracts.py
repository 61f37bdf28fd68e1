"""The OPEA-compatible JSON contracts between services (the orchestrator's typed edges use these)."""

from __future__ import annotations

from typing import Annotated

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


# Upstream SadTalker's --input_yaw/pitch/roll: degrees; the renderer's angle bins span [-99, 96].
Angle = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Angles = Annotated[list[Angle], Field(min_length=1, max_length=64)]


class SadTalkerOptions(_Contract):
    """The SadTalker modes' per-request options; the animation service refuses them (400) for other modes."""

    still: bool | None = Field(
        default=None, description="SadTalker: keep the avatar's head pose (and no blinks unless blink is true)"
    )
    blink: bool | None = Field(default=None, description="SadTalker: random eye blinks; default: unless still")
    expression_scale: float | None = Field(
        default=None, ge=0.0, le=5.0, description="SadTalker: multiplies the predicted expression"
    )
    pose_style: int | None = Field(default=None, ge=0, le=45, description="SadTalker: head-motion style 0..45")
    seed: int | None = Field(
        default=None, ge=0, le=2**63 - 1, description="SadTalker: seeds head motion and blinks (default 0)"
    )
    input_yaw: Angles | None = Field(
        default=None, description="SadTalker: head yaw in degrees, one value or several visited in turn"
    )
    input_pitch: Angles | None = Field(default=None, description="SadTalker: head pitch in degrees (as input_yaw)")
    input_roll: Angles | None = Field(default=None, description="SadTalker: head roll in degrees (as input_yaw)")


class AnimationRequest(SadTalkerOptions):
    """`POST /v1/animation`: OPEA's `byte_str` plus our optional fields (the SadTalker options among them)."""

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
