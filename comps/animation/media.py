"""Avatar media: an upload decoded into capped, size-limited BGR frames, and re-encoded for the store.

An image goes through Pillow, a short video through PyAV; the store keeps the frames as a PNG or an
H.264 MP4 (`encode_media`), never the uploaded bytes.

A decompression bomb is refused from its header: the declared width x height is checked against the
pixel limit before a single pixel is decoded (Pillow opens lazily; a video's size is the container's
and its decoder is opened with FFmpeg's `max_pixels`), and frames are scaled down as they are decoded.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import cv2
import numpy as np

from comps.animation.encode import fps_arg
from comps.animation.track import Frame
from comps.core.errors import InvalidRequest, PayloadTooLarge

logger = logging.getLogger(__name__)

MAX_PIXELS = 40_000_000  # default limit on the declared pixels of one picture or video frame
MIN_SIDE = 96  # Wav2Lip's face input is 96x96; smaller pictures cannot hold a usable face
# The stored copy of a video avatar: H.264 4:4:4 (any size, odd sides too) at a quality close to lossless;
# every rendered frame starts from these pixels and is encoded again (CRF 20) on its way out.
STORED_CRF = 12
STORED_PRESET = "veryfast"

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


def decode_media(
    data: bytes, *, max_frames: int, max_side: int, max_pixels: int = MAX_PIXELS, param: str = "file"
) -> Media:
    """Decode an image or a short video; a video keeps its first `max_frames` frames.

    Frames whose longer side exceeds `max_side` are scaled down (aspect kept) as they are decoded.

    Raises:
        InvalidRequest: empty, corrupt, or neither an image nor a video; too small.
        PayloadTooLarge: the picture declares more than `max_pixels` pixels (refused before decoding).
    """
    if not data:
        raise InvalidRequest(f"{param} is empty", param=param, code="invalid_avatar")
    fit = _Fit(max_side=max_side, param=param)
    media = _decode_image(data, fit, max_pixels, param) or _decode_video(data, fit, max_frames, max_pixels, param)
    if media is None:
        raise InvalidRequest(
            f"{param} is not a readable image or video (PNG, JPEG, WebP, MP4, WebM, ...)",
            param=param,
            code="invalid_avatar",
        )
    return media


def encode_media(media: Media) -> tuple[str, bytes]:
    """The frames re-encoded for the store: (".png", a PNG) for an image, (".mp4", H.264 + MP4) for a video.

    Only pixels go in: no metadata, ICC profile, text chunk or trailing byte of the upload survives.
    """
    if media.kind == "image":
        ok, png = cv2.imencode(".png", media.frames[0])
        if not ok:
            raise RuntimeError("PNG encoding failed")
        return ".png", bytes(png.tobytes())
    import av

    assert media.fps is not None  # a video avatar always has its rate (decode_media refuses one without)
    height, width = media.frames[0].shape[:2]
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps_arg(media.fps)))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        stream.options = {"crf": str(STORED_CRF), "preset": STORED_PRESET}
        for frame in media.frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        container.mux(stream.encode(None))
    return ".mp4", out.getvalue()


@dataclass(frozen=True)
class _Fit:
    """Check a decoded frame's size (the first one) and scale it down to `max_side`."""

    max_side: int
    param: str

    def __call__(self, frame: Frame, *, first: bool) -> Frame:
        height, width = frame.shape[:2]
        if first and min(height, width) < MIN_SIDE:
            raise InvalidRequest(
                f"{self.param} is {width}x{height}; an avatar needs at least {MIN_SIDE} pixels on each side",
                param=self.param,
                code="avatar_too_small",
            )
        scale = self.max_side / max(height, width)
        if scale >= 1:
            return frame
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), np.uint8)


def _check_pixels(width: int, height: int, max_pixels: int, param: str) -> None:
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"{param} is {width}x{height}; the limit is {max_pixels} pixels", param=param, code="avatar_too_large"
        )


def _decode_image(data: bytes, fit: _Fit, max_pixels: int, param: str) -> Media | None:
    """A still image (the first frame of an animated one), upright per its EXIF orientation; None if not an image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
            _check_pixels(image.width, image.height, max_pixels, param)
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
    return Media(kind="image", frames=(fit(frame, first=True),), fps=None)


def _decode_video(data: bytes, fit: _Fit, max_frames: int, max_pixels: int, param: str) -> Media | None:
    """The first `max_frames` frames of the first video stream; None when it is not a video."""
    import av

    frames: list[Frame] = []
    fps: float | None = None
    limit = {"max_pixels": str(max_pixels)}  # FFmpeg's decoders refuse larger frames (probing included)
    try:
        with av.open(io.BytesIO(data), mode="r", options=limit) as container:
            if not container.streams.video or not set(container.format.name.split(",")) & VIDEO_FORMATS:
                return None
            stream = container.streams.video[0]
            _check_pixels(stream.codec_context.width, stream.codec_context.height, max_pixels, param)
            stream.codec_context.options = limit
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else None
            for frame in container.decode(stream):
                frames.append(fit(np.asarray(frame.to_ndarray(format="bgr24"), np.uint8), first=not frames))
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
