"""The animation service's own request/response models (OPEA's /v1/animation ones live in comps.core.contracts)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from comps.core import contracts
from comps.core.contracts import AnimationResponse

# Upstream's --input_yaw/pitch/roll: degrees; the renderer's angle bins span [-99, 96].
Angle = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Angles = Annotated[list[Angle], Field(min_length=1, max_length=64)]

__all__ = ["AnimationRequest", "AnimationResponse", "AvatarList", "AvatarOut", "Wav2LipRequest", "Wav2LipResponse"]


class AnimationRequest(contracts.AnimationRequest):
    """OPEA's `/v1/animation` body plus optional SadTalker options (400 when the mode does not take them)."""

    still: bool | None = Field(default=None, description="SadTalker: keep the avatar's head pose, no blinks")
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
