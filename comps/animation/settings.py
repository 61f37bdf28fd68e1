"""Animation service settings: modes, checkpoints, avatars, outputs, rendering (env prefix `ANIMATION_`).

OPEA's Wav2Lip variables are honoured as aliases: `DEVICE`, `INFERENCE_MODE`, `CHECKPOINT_PATH`,
`FACE`, `FACESIZE`, `OUTFILE`, `GFPGAN_MODEL_VERSION`, `UPSCALE_FACTOR`, `FPS`; and SadTalker's
`SADTALKER_CHECKPOINT_DIR`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from comps.animation.pace import StreamRate
from comps.core.settings import AutoBool, DeviceName, EnvBool, ServiceSettings, env_alias

ModeName = Literal["wav2lip", "wav2lip_gan", "wav2lip+gfpgan", "sadtalker", "sadtalker+gfpgan"]
DetectorName = Literal["haar", "retinaface"]

# OPEA's INFERENCE_MODE spellings -> ours.
MODE_ALIASES: dict[str, str] = {"wav2lip_only": "wav2lip"}


def _mode(value: object) -> object:
    if isinstance(value, str):
        value = value.strip().lower()
        return MODE_ALIASES.get(value, value)
    return value


def _modes(value: object) -> object:
    """`ANIMATION_MODES=wav2lip_gan,wav2lip+gfpgan` (comma-separated) or a list."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return [_mode(v) for v in value]
    return value


Mode = Annotated[ModeName, BeforeValidator(_mode)]


# A public-domain portrait shipped with the package, so FACE is optional.
DEFAULT_AVATAR = Path(__file__).resolve().parent / "assets" / "default_avatar.png"


class AnimationSettings(ServiceSettings):
    """Everything the animation process reads from its environment.

    Weights are found in `checkpoint_dir` (when set), then in the model cache
    (`avatarchat download wav2lip` / `avatarchat download gfpgan`); a missing one stops start-up
    with a message naming the file.
    """

    model_config = SettingsConfigDict(env_prefix="ANIMATION_")

    port: int = Field(default=9066, ge=1, le=65535, validation_alias=env_alias("ANIMATION_PORT"))
    device: DeviceName = Field(default="auto", validation_alias=env_alias("ANIMATION_DEVICE", "DEVICE"))
    # The mode of a request that names none; OPEA's `wav2lip_only` means `wav2lip`.
    inference_mode: Mode = Field(
        default="wav2lip", validation_alias=env_alias("ANIMATION_INFERENCE_MODE", "INFERENCE_MODE")
    )
    # Further modes loaded at start-up and selectable per request (the default mode is always loaded).
    modes: Annotated[list[Mode], NoDecode, BeforeValidator(_modes)] = Field(default_factory=list)
    # A Wav2Lip .pth file for the default mode (OPEA's meaning); other modes use checkpoint_dir / the cache.
    checkpoint_path: Path | None = Field(
        default=None, validation_alias=env_alias("ANIMATION_CHECKPOINT_PATH", "CHECKPOINT_PATH")
    )
    # A folder holding wav2lip.pth, wav2lip_gan.pth, GFPGANv1.4.pth, detection_Resnet50_Final.pth.
    checkpoint_dir: Path | None = None
    fp8_config: Path | None = Field(
        default=None,
        validation_alias=env_alias("ANIMATION_FP8_CONFIG", "QUANT_CONFIG"),
        description="Intel Neural Compressor FP8 config (JSON, Gaudi) applied to Wav2Lip; unset: none",
    )
    # Only the versions built on GFPGANv1Clean with v1.4's hyper-parameters load into our enhancer.
    gfpgan_model_version: Literal["1.3", "1.4"] = Field(
        default="1.4", validation_alias=env_alias("ANIMATION_GFPGAN_MODEL_VERSION", "GFPGAN_MODEL_VERSION")
    )
    upscale_factor: int = Field(
        default=1, ge=1, le=4, validation_alias=env_alias("ANIMATION_UPSCALE_FACTOR", "UPSCALE_FACTOR")
    )
    # Output frame rate when the request names none (a video avatar's own rate wins over it).
    fps: float = Field(default=25.0, gt=0, le=60, validation_alias=env_alias("ANIMATION_FPS", "FPS"))
    # The rate of a stream (WS /v1/animation/stream) that names none: `full` is the rate above (or the
    # video avatar's); `half` renders half as many frames, each covering twice the speech; `auto` is
    # half where this process renders streams slower than 1.2x the full rate (measured at start and on
    # every stream: an AVX2 CPU in fp32 on two cores), full elsewhere. See comps/animation/pace.py.
    stream_rate: StreamRate = "auto"
    # The default avatar (image or short video), registered at start-up as id `default`; unset, the
    # portrait shipped in the package (comps/animation/assets/README.md says whose, and its licence).
    face: Path | None = Field(default=DEFAULT_AVATAR, validation_alias=env_alias("ANIMATION_FACE", "FACE"))
    # OPEA's FACESIZE is Wav2Lip's fixed 96-pixel face input; accepted, and only 96 makes sense.
    facesize: int = Field(default=96, ge=96, le=96, validation_alias=env_alias("ANIMATION_FACESIZE", "FACESIZE"))
    # OPEA's OUTFILE (one shared result path) is accepted and ignored: each video gets its own id in output_dir.
    outfile: Path | None = Field(default=None, validation_alias=env_alias("ANIMATION_OUTFILE", "OUTFILE"))
    face_detector: DetectorName = "haar"
    avatar_dir: Path = Field(default=Path.home() / ".local" / "share" / "avatarchat" / "avatars")
    output_dir: Path = Field(default=Path.home() / ".local" / "share" / "avatarchat" / "videos")
    retention: int = Field(default=100, ge=1, le=100_000, description="videos kept; the oldest go first")
    # Seconds a finished video is kept (removed by the next prune: each commit, and a timer); 0: no age limit.
    video_ttl_s: float = Field(default=86_400.0, ge=0, description="video lifetime in seconds; 0: unlimited")
    # Bytes all videos (partial ones included) may take; the oldest finished ones go first. 0: no cap.
    store_max_bytes: int = Field(default=10 * 1024**3, ge=0, description="video store size cap in bytes; 0: none")
    public_url: str | None = Field(default=None, description="base of video_url; the request's base URL when unset")
    max_audio_seconds: float = Field(default=120.0, gt=0, le=3600)
    # Frames one request may render (its duration times its fps): 3000 is 2 minutes at 25 fps.
    max_frames: int = Field(default=3000, ge=1, le=1_000_000)
    # An avatar upload's size, and its declared pixels per frame: larger ones are refused before they are decoded.
    avatar_max_bytes: int = Field(default=32 * 1024**2, ge=1024)
    avatar_max_pixels: int = Field(default=40_000_000, ge=96 * 96)
    # A video avatar keeps at most this many frames (5 s at 25 fps): every frame stays in memory.
    avatar_max_frames: int = Field(default=125, ge=1, le=1000)
    # Larger avatars are scaled down so their longer side is this many pixels (render cost grows with area).
    avatar_max_side: int = Field(default=1024, ge=96, le=4096)
    max_avatars_cached: int = Field(default=8, ge=1, le=1000)
    batch_size: int = Field(default=16, ge=1, le=512)
    # SadTalker modes (`sadtalker`, `sadtalker+gfpgan`). The folder holds SadTalker_V0.0.2_{256,512}.safetensors
    # and mapping_00229/00109-model.pth.tar under their published names; unset: the model cache's
    # `sadtalker` folder (where `avatarchat download sadtalker` puts them).
    sadtalker_checkpoint_dir: Path | None = Field(
        default=None,
        validation_alias=env_alias("ANIMATION_SADTALKER_CHECKPOINT_DIR", "SADTALKER_CHECKPOINT_DIR"),
    )
    sadtalker_size: Literal[256, 512] = Field(default=256, description="face render size in pixels")
    # crop: 70 coefficients (mapping_00229); full: 73, the crop parameters appended (mapping_00109).
    # Both paste the rendered face back into the avatar frame.
    sadtalker_preprocess: Literal["crop", "full"] = "crop"
    sadtalker_still: EnvBool = Field(default=False, description="keep the source head pose, no random blinks")
    sadtalker_expression_scale: float = Field(default=1.0, ge=0.0, le=5.0)
    sadtalker_pose_style: int = Field(default=0, ge=0, le=45, description="head-motion style, 0..45")
    # Frames per generator call; SadTalker's renderer is heavy (~25 s per 256 frame on 2 CPU cores).
    sadtalker_batch_size: int = Field(default=2, ge=1, le=64)
    # auto: bf16 where the device has native bf16 kernels (Xeon with AMX/AVX-512 BF16: ~3x Wav2Lip's fp32
    # speed), fp32 elsewhere (an AVX2-only CPU runs bf16 10-100x slower).
    bf16: AutoBool = None
    compile: EnvBool = False
    ffmpeg: str = "ffmpeg"

    @model_validator(mode="after")
    def _default_mode_first(self) -> AnimationSettings:
        """`modes` always holds the default mode, first, without duplicates."""
        self.modes = list(dict.fromkeys([self.inference_mode, *self.modes]))
        return self
