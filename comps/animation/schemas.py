"""The animation service's own request/response models (`/v1/animation`'s live in comps.core.contracts, shared)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from comps.core.contracts import AnimationRequest, AnimationResponse

__all__ = ["AnimationRequest", "AnimationResponse", "AvatarList", "AvatarOut", "Wav2LipRequest", "Wav2LipResponse"]


class Wav2LipRequest(BaseModel):
    """OPEA's Wav2Lip server body: `POST /v1/wav2lip` `{"audio": <base64 audio>}`."""

    model_config = ConfigDict(extra="ignore")

    audio: str = Field(description="base64 of the speech audio")


class Wav2LipResponse(BaseModel):
    """OPEA's answer: the path of the rendered video (here inside the output store; see also /v1/videos/{id})."""

    wav2lip_result: str


class AvatarOut(BaseModel):
    """A registered avatar."""

    id: str
    name: str
    kind: Literal["image", "video"]
    frames: int
    width: int
    height: int
    fps: float | None = Field(description="a video avatar's own frame rate; null for an image")
    default: bool = Field(description="the avatar used when a request names none")
    image_url: str = Field(description="PNG preview of the first frame")


class AvatarList(BaseModel):
    """`GET /v1/avatars`."""

    avatars: list[AvatarOut]
