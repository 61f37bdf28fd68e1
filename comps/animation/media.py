"""Decoding an avatar upload: an image (Pillow) or a short video (PyAV) into capped, size-limited BGR frames."""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from comps.animation.track import Frame
from comps.core.errors import InvalidRequest, PayloadTooLarge

logger = logging.getLogger(__name__)

MAX_PIXELS = 40_000_000  # refuse larger declared images/videos before decoding (decompression bombs)
MIN_SIDE = 96  # Wav2Lip's face input is 96x96; smaller pictures cannot hold a usable face

# Container formats accepted as video avatars (ffmpeg demuxer names). Others, such as `tty`, which
# "decodes" any text file as ANSI art, are refused.
VIDEO_FORMATS = {"mov", "mp4", "matroska", "webm", "avi", "gif", "flv", "mpeg", "mpegts", "webp_pipe", "apng", "ogg"}

AvatarKind = Literal["image", "video"]


@dataclass(frozen=True)
class Media:
    """Decoded avatar frames (BGR uint8, all one size), whether they came from an image or a video, its fps."""

    kind: AvatarKind
    frames: tuple[Frame, ...]
    fps: float | None


def decode_media(data: bytes, *, max_frames: int, max_side: int, param: str = "file") -> Media:
    """Decode an image or a short video; a video keeps its first `max_frames` frames.

    Frames whose longer side exceeds `max_side` are scaled down (aspect kept).

    Raises:
        InvalidRequest: empty, corrupt, or neither an image nor a video; too small.
        PayloadTooLarge: the picture declares more than `MAX_PIXELS` pixels.
    """
    if not data:
        raise InvalidRequest(f"{param} is empty", param=param, code="invalid_avatar")
    media = _decode_image(data, param) or _decode_video(data, max_frames, param)
    if media is None:
        raise InvalidRequest(
            f"{param} is not a readable image or video (PNG, JPEG, WebP, MP4, WebM, ...)",
            param=param,
            code="invalid_avatar",
        )
    height, width = media.frames[0].shape[:2]
    if min(height, width) < MIN_SIDE:
        raise InvalidRequest(
            f"{param} is {width}x{height}; an avatar needs at least {MIN_SIDE} pixels on each side",
            param=param,
            code="avatar_too_small",
        )
    scale = max_side / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        frames = tuple(np.asarray(cv2.resize(f, size, interpolation=cv2.INTER_AREA), np.uint8) for f in media.frames)
        media = Media(kind=media.kind, frames=frames, fps=media.fps)
    return media


def _check_pixels(width: int, height: int, param: str) -> None:
    if width * height > MAX_PIXELS:
        raise PayloadTooLarge(
            f"{param} is {width}x{height}; the limit is {MAX_PIXELS} pixels", param=param, code="avatar_too_large"
        )


def _decode_image(data: bytes, param: str) -> Media | None:
    """A still image (the first frame of an animated one), upright per its EXIF orientation; None if not an image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_pixels(image.width, image.height, param)
            if getattr(image, "is_animated", False):
                return None  # an animated GIF/WebP is a video avatar
            rgb = ImageOps.exif_transpose(image).convert("RGB")
            pixels = np.asarray(rgb, np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        if isinstance(exc, UnidentifiedImageError):
            return None
        raise PayloadTooLarge(f"{param} is too large an image: {exc}", param=param, code="avatar_too_large") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt image data
        raise InvalidRequest(f"{param} is a corrupt image: {exc}", param=param, code="invalid_avatar") from exc
    frame = np.ascontiguousarray(pixels[..., ::-1])  # RGB -> BGR
    return Media(kind="image", frames=(frame,), fps=None)


def _decode_video(data: bytes, max_frames: int, param: str) -> Media | None:
    """The first `max_frames` frames of the first video stream; None when it is not a video."""
    import av

    frames: list[Frame] = []
    fps: float | None = None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video or not set(container.format.name.split(",")) & VIDEO_FORMATS:
                return None
            stream = container.streams.video[0]
            _check_pixels(stream.codec_context.width, stream.codec_context.height, param)
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else None
            for frame in container.decode(stream):
                frames.append(np.asarray(frame.to_ndarray(format="bgr24"), np.uint8))
                if len(frames) >= max_frames:
                    logger.info("video avatar cut to its first %d frames", max_frames)
                    break
    except av.FFmpegError:
        if not frames:
            return None
        logger.info("video avatar ends in undecodable data; keeping %d frames", len(frames))
    if not frames:
        return None
    if len(frames) == 1:
        return Media(kind="image", frames=(frames[0],), fps=None)
    if fps is None or not 1 <= fps <= 120:
        raise InvalidRequest(f"{param} has no usable frame rate ({fps})", param=param, code="invalid_avatar")
    return Media(kind="video", frames=tuple(frames), fps=fps)
