"""Avatar media: bombs refused from their headers, frames scaled as decoded, and the pixels-only copy for the store."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile
from support.avatar_media import astronaut, encode_clip, panned_frames

from comps.animation import media as media_module
from comps.animation.media import Media, decode_media, encode_media
from comps.core.errors import PayloadTooLarge


@pytest.fixture(scope="module")
def png(shared_dir: Path) -> bytes:
    return (shared_dir / "assets" / "avatar_astronaut.png").read_bytes()


@pytest.fixture(scope="module")
def clip(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    frames = panned_frames(astronaut(shared_dir), 6, step_px=3)
    return encode_clip(frames, 10, tmp_path_factory.mktemp("clip") / "clip.mp4")


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR declares `width` x `height` (valid CRC; the pixel data is an 8x8 picture's)."""
    ok, small = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    assert ok
    data = bytearray(small.tobytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(
    png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    with pytest.raises(PayloadTooLarge, match="512x512; the limit is 100000 pixels") as caught:
        decode_media(png, max_frames=10, max_side=1024, max_pixels=100_000)
    assert (caught.value.code, caught.value.param, caught.value.status) == ("avatar_too_large", "file", 413)


@pytest.mark.parametrize(("width", "height"), [(20_000, 20_000), (60_000, 1_000)])
def test_a_decompression_bomb_is_refused_from_its_header(width: int, height: int) -> None:
    bomb = png_header(width, height)
    assert len(bomb) < 200
    with pytest.raises(PayloadTooLarge) as caught:
        decode_media(bomb, max_frames=10, max_side=1024)
    assert caught.value.code == "avatar_too_large"


def test_a_video_over_the_pixel_limit_is_refused_before_a_frame_is_decoded(
    clip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(media_module._Fit, "__call__", never)
    with pytest.raises(PayloadTooLarge, match="512x512") as caught:
        decode_media(clip, max_frames=10, max_side=1024, max_pixels=100_000)
    assert caught.value.code == "avatar_too_large"


def test_video_frames_are_scaled_down_as_they_are_decoded(clip: bytes) -> None:
    decoded = decode_media(clip, max_frames=4, max_side=128)
    assert (decoded.kind, len(decoded.frames), decoded.fps) == ("video", 4, 10.0)
    assert {frame.shape for frame in decoded.frames} == {(128, 128, 3)}


def test_an_image_is_stored_as_a_png_of_its_pixels_only(shared_dir: Path) -> None:
    pixels = astronaut(shared_dir)[:300, :200]
    suffix, data = encode_media(Media(kind="image", frames=(pixels,), fps=None))
    assert suffix == ".png" and data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
    with Image.open(io.BytesIO(data)) as image:
        assert not image.info and not image.getexif()  # no text, ICC profile, EXIF or gamma chunk
    np.testing.assert_array_equal(decode_media(data, max_frames=1, max_side=1024).frames[0], pixels)


def test_a_video_is_stored_as_h264_close_to_its_frames(shared_dir: Path) -> None:
    frames = tuple(frame[:333, :251] for frame in panned_frames(astronaut(shared_dir), 5, step_px=4))  # odd sides
    suffix, data = encode_media(Media(kind="video", frames=frames, fps=12.5))
    assert suffix == ".mp4" and data[4:8] == b"ftyp"
    back = decode_media(data, max_frames=100, max_side=1024)
    assert (back.kind, len(back.frames), back.fps) == ("video", 5, 12.5)
    for original, decoded in zip(frames, back.frames, strict=True):
        assert decoded.shape == original.shape
        assert np.abs(decoded.astype(np.int16) - original).mean() < 2.0  # CRF 12, 4:4:4: close to lossless
