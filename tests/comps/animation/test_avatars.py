"""The avatar registry: images and videos, persisted and reloaded without re-detection, and every refusal."""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from support.avatar_media import astronaut, encode_clip, panned_frames

from comps.animation.avatars import DEFAULT_ID, AvatarRegistry
from comps.animation.detect import Face, HaarDetector
from comps.animation.track import FaceTrack, Frame
from comps.core.errors import InvalidRequest, NotFound, PayloadTooLarge, Unprocessable


class NeverDetect:
    """A detector that fails the test if called: reloading an avatar must reuse its stored track."""

    def detect(self, frame: Frame) -> None:
        raise AssertionError("the face was detected again")


def registry(
    root: Path, detector: object | None = None, analyzers: Sequence[object] = (), **limits: int
) -> AvatarRegistry:
    options = {"max_frames": 125, "max_side": 1024, "cache_size": 8} | limits
    return AvatarRegistry(
        root=root,
        detector=detector or HaarDetector(),  # type: ignore[arg-type]
        analyzers=analyzers,  # type: ignore[arg-type]
        **options,
    )


@pytest.fixture(scope="module")
def png(shared_dir: Path) -> bytes:
    return (shared_dir / "assets" / "avatar_astronaut.png").read_bytes()


@pytest.fixture(scope="module")
def clip(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    frames = panned_frames(astronaut(shared_dir), 10, step_px=2)
    return encode_clip(frames, 10, tmp_path_factory.mktemp("clip") / "clip.mp4")


def test_image_is_registered_persisted_and_reloaded_without_detection(tmp_path: Path, png: bytes) -> None:
    first = registry(tmp_path)
    avatar = first.register(png, name="Astronaut")
    info = avatar.info
    assert (info.name, info.kind, info.frames, info.width, info.height, info.fps) == (
        "Astronaut",
        "image",
        1,
        512,
        512,
        None,
    )
    folder = tmp_path / info.id
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "source.png", "track.npz"]
    assert json.loads((folder / "meta.json").read_text())["id"] == info.id

    again = registry(tmp_path, NeverDetect())  # a restart
    assert [i.id for i in again.list()] == [info.id]
    reloaded = again.get(info.id)
    np.testing.assert_array_equal(reloaded.track.boxes, avatar.track.boxes)
    assert reloaded.track.align is not None and avatar.track.align is not None
    np.testing.assert_allclose(reloaded.track.align, avatar.track.align)
    np.testing.assert_array_equal(reloaded.track.frames[0], avatar.track.frames[0])


def test_video_is_registered_with_per_frame_boxes(tmp_path: Path, clip: bytes) -> None:
    avatar = registry(tmp_path).register(clip, name=None)
    assert (avatar.info.kind, avatar.info.frames, avatar.info.fps) == ("video", 10, 10.0)
    assert avatar.info.name == avatar.info.id
    assert avatar.track.boxes.shape == (10, 4) and avatar.track.fps == 10.0
    assert avatar.track.boxes[-1, 2] > avatar.track.boxes[0, 2]  # the boxes follow the pan
    reloaded = registry(tmp_path, NeverDetect()).get(avatar.info.id)
    np.testing.assert_array_equal(reloaded.track.boxes, avatar.track.boxes)
    assert len(reloaded.track.frames) == 10


def test_video_is_cut_to_max_frames(tmp_path: Path, clip: bytes) -> None:
    avatar = registry(tmp_path, max_frames=4).register(clip, name="short")
    assert avatar.info.frames == 4 and len(avatar.track.frames) == 4


def test_large_images_are_scaled_down(tmp_path: Path, shared_dir: Path) -> None:
    big = cv2.resize(astronaut(shared_dir), (1400, 1400))
    ok, data = cv2.imencode(".jpg", big)
    assert ok
    avatar = registry(tmp_path, max_side=700).register(data.tobytes(), name="big")
    assert (avatar.info.width, avatar.info.height) == (700, 700)


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (b"", InvalidRequest, "invalid_avatar"),
        (b"this is not an image, just some text\n" * 20, InvalidRequest, "invalid_avatar"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, InvalidRequest, "invalid_avatar"),  # a PNG signature, then garbage
    ],
)
def test_bad_uploads_are_refused(tmp_path: Path, data: bytes, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as caught:
        registry(tmp_path).register(data, name=None)
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]


def test_truncated_image_is_refused(tmp_path: Path, png: bytes) -> None:
    with pytest.raises(InvalidRequest, match="corrupt|not a readable"):
        registry(tmp_path).register(png[: len(png) // 2], name=None)


def test_tiny_and_huge_images_are_refused(tmp_path: Path) -> None:
    ok, tiny = cv2.imencode(".png", np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(InvalidRequest, match="at least 96"):
        registry(tmp_path).register(tiny.tobytes(), name=None)
    # A PNG header declaring 20000x20000 pixels: refused before decoding.
    ok, small = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    header = bytearray(small.tobytes())
    header[16:24] = (20000).to_bytes(4, "big") * 2
    header[29:33] = zlib.crc32(bytes(header[12:29])).to_bytes(4, "big")  # a valid IHDR chunk
    with pytest.raises(PayloadTooLarge):
        registry(tmp_path).register(bytes(header), name=None)


def test_no_face_is_unprocessable(tmp_path: Path) -> None:
    ok, gray = cv2.imencode(".png", np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(Unprocessable, match="no face") as caught:
        registry(tmp_path).register(gray.tobytes(), name=None)
    assert caught.value.status == 422


def test_ids_are_validated_and_unknown_ids_are_not_found(tmp_path: Path) -> None:
    avatars = registry(tmp_path)
    for bad in ("../etc", "UPPER", "a/b", "", "x" * 65, "-lead"):
        with pytest.raises(InvalidRequest, match="avatar id"):
            avatars.get(bad)
    with pytest.raises(NotFound):
        avatars.get("nosuchavatar")
    with pytest.raises(NotFound):
        avatars.get(DEFAULT_ID)  # no FACE configured


def test_default_avatar_and_delete(tmp_path: Path, shared_dir: Path, png: bytes) -> None:
    avatars = registry(tmp_path)
    default = avatars.register_default(shared_dir / "assets" / "avatar_astronaut.png")
    uploaded = avatars.register(png, name="mine")
    assert [i.id for i in avatars.list()] == [DEFAULT_ID, uploaded.info.id]
    assert avatars.get(DEFAULT_ID) is default
    with pytest.raises(InvalidRequest, match="default"):
        avatars.delete(DEFAULT_ID)
    avatars.delete(uploaded.info.id)
    assert not (tmp_path / uploaded.info.id).exists()
    with pytest.raises(NotFound):
        avatars.get(uploaded.info.id)
    with pytest.raises(FileNotFoundError, match="FACE"):
        avatars.register_default(tmp_path / "missing.png")


def test_track_cache_is_bounded(tmp_path: Path, png: bytes) -> None:
    avatars = registry(tmp_path, cache_size=1)
    a = avatars.register(png, name="a").info.id
    b = avatars.register(png, name="b").info.id
    assert list(avatars._tracks) == [b]
    assert avatars.get(a).info.id == a  # reloaded from disk
    assert list(avatars._tracks) == [a]


def test_preview_is_a_small_png(tmp_path: Path, png: bytes) -> None:
    avatars = registry(tmp_path)
    avatar_id = avatars.register(png, name=None).info.id
    preview = cv2.imdecode(np.frombuffer(avatars.preview_png(avatar_id), np.uint8), cv2.IMREAD_COLOR)
    assert preview.shape == (320, 320, 3)


class Measure:
    """An analyzer that derives arrays from the track and counts its calls (the registry's side of the contract)."""

    name = "measure"

    def __init__(self, version: str = "v1", *, fail: bool = False) -> None:
        self.version = version
        self.fail = fail
        self.calls = 0

    def analyze(self, track: FaceTrack) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.fail:
            raise ValueError("this face cannot be measured")
        assert track.landmarks is not None
        return {"centre": track.landmarks[0].mean(axis=0), "box": track.boxes[0].copy()}


def test_analysis_runs_at_registration_is_stored_and_reused(tmp_path: Path, png: bytes) -> None:
    measure = Measure()
    first = registry(tmp_path, analyzers=[measure])
    avatar = first.register(png, name=None)
    assert measure.calls == 1
    track = avatar.track
    assert track.landmarks is not None and track.landmarks.shape == (1, 5, 2)
    stored = dict(track.analysis["measure"])
    assert np.allclose(stored["centre"], track.landmarks[0].mean(axis=0))
    assert (tmp_path / avatar.info.id / "analysis-measure.npz").is_file()

    again = Measure()  # a restart with the same analyzer: read back, not recomputed
    reloaded = registry(tmp_path, NeverDetect(), analyzers=[again]).get(avatar.info.id).track
    assert again.calls == 0
    assert set(reloaded.analysis) == {"measure"}
    for key, value in stored.items():
        assert np.array_equal(reloaded.analysis["measure"][key], value)
    assert reloaded.landmarks is not None and np.array_equal(reloaded.landmarks, track.landmarks)

    changed = Measure("v2")  # other weights or rules: analysed again and stored for next time
    registry(tmp_path, NeverDetect(), analyzers=[changed]).get(avatar.info.id)
    assert changed.calls == 1
    later = Measure("v2")
    registry(tmp_path, NeverDetect(), analyzers=[later]).get(avatar.info.id)
    assert later.calls == 0


def test_avatar_registered_before_an_analyzer_existed_is_analysed_on_load(tmp_path: Path, png: bytes) -> None:
    avatar = registry(tmp_path).register(png, name=None)
    assert not (tmp_path / avatar.info.id / "analysis-measure.npz").exists()
    measure = Measure()
    track = registry(tmp_path, NeverDetect(), analyzers=[measure]).get(avatar.info.id).track
    assert measure.calls == 1 and "measure" in track.analysis
    assert (tmp_path / avatar.info.id / "analysis-measure.npz").is_file()


def test_default_avatar_is_analysed_in_memory(tmp_path: Path, shared_dir: Path) -> None:
    measure = Measure()
    reg = registry(tmp_path / "avatars", analyzers=[measure])
    default = reg.register_default(shared_dir / "assets" / "avatar_astronaut.png")
    assert measure.calls == 1 and "measure" in default.track.analysis
    assert list((tmp_path / "avatars").iterdir()) == []  # nothing written for the default avatar


def test_face_an_analyzer_cannot_use_is_unprocessable(tmp_path: Path, png: bytes, shared_dir: Path) -> None:
    reg = registry(tmp_path / "avatars", analyzers=[Measure(fail=True)])
    with pytest.raises(Unprocessable) as caught:
        reg.register(png, name=None)
    assert caught.value.code == "face_not_usable" and "cannot be measured" in caught.value.message
    assert list((tmp_path / "avatars").iterdir()) == []  # nothing half-registered
    with pytest.raises(ValueError, match="not usable"):
        reg.register_default(shared_dir / "assets" / "avatar_astronaut.png")


class CountingHaar(HaarDetector):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def detect(self, frame: Frame) -> Face | None:
        self.calls += 1
        return super().detect(frame)


def test_track_stored_without_landmarks_is_detected_again_and_stored(tmp_path: Path, png: bytes) -> None:
    avatar = registry(tmp_path).register(png, name=None)
    stored = tmp_path / avatar.info.id / "track.npz"
    with np.load(stored) as old:  # the layout of an earlier version: no landmarks
        np.savez(stored, boxes=old["boxes"], align=old["align"], fps=old["fps"])
    detector = CountingHaar()
    track = registry(tmp_path, detector).get(avatar.info.id).track
    assert detector.calls == 1
    assert track.landmarks is not None and track.landmarks.shape == (1, 5, 2)
    again = registry(tmp_path, NeverDetect()).get(avatar.info.id).track  # the new track was stored
    assert again.landmarks is not None and np.array_equal(again.landmarks, track.landmarks)
    assert sorted(p.name for p in stored.parent.iterdir()) == ["meta.json", "source.png", "track.npz"]


def with_extras(png: bytes) -> bytes:
    """The astronaut PNG re-saved with a text chunk, an ICC profile and EXIF, then a ZIP and a script appended."""
    from PIL import Image, PngImagePlugin

    image = Image.open(io.BytesIO(png))
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "<script>alert('text chunk')</script>")
    exif = Image.Exif()
    exif[0x010E] = "<script>alert('exif')</script>"  # ImageDescription
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=text, icc_profile=b"\0" * 128 + b"<icc/>", exif=exif)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("payload.html", "<script>alert('zip')</script>")
    return out.getvalue() + archive.getvalue() + b"<html><script>alert('tail')</script></html>"


def test_an_upload_is_stored_re_encoded_without_metadata_or_trailing_bytes(tmp_path: Path, png: bytes) -> None:
    upload = with_extras(png)
    assert zipfile.is_zipfile(io.BytesIO(upload))  # a polyglot: a PNG and a ZIP at once
    avatar = registry(tmp_path).register(upload, name=None)
    folder = tmp_path / avatar.info.id
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "source.png", "track.npz"]
    stored = (folder / "source.png").read_bytes()
    assert stored != upload and stored.endswith(b"IEND\xaeB`\x82")
    for marker in (b"<script", b"tEXt", b"iTXt", b"zTXt", b"iCCP", b"eXIf", b"PK\x03\x04", b"<icc/>"):
        assert marker not in stored, marker
    assert not zipfile.is_zipfile(io.BytesIO(stored))
    upright = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_COLOR), upright)
    np.testing.assert_array_equal(avatar.track.frames[0], upright)


def test_exif_orientation_is_applied_and_then_dropped(tmp_path: Path, shared_dir: Path) -> None:
    from PIL import Image

    upright = astronaut(shared_dir)[:, 56:456]  # 400 wide, 512 high
    sideways = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    out = io.BytesIO()
    Image.fromarray(sideways[..., ::-1]).save(out, format="JPEG", quality=95, exif=exif)
    avatar = registry(tmp_path).register(out.getvalue(), name=None)
    assert (avatar.info.width, avatar.info.height) == (400, 512)
    stored = (tmp_path / avatar.info.id / "source.png").read_bytes()
    assert b"Exif" not in stored and b"eXIf" not in stored
    assert np.abs(avatar.track.frames[0].astype(np.int16) - upright).mean() < 3  # JPEG's loss only


def test_a_video_is_stored_re_encoded_and_reloads_the_very_frames_it_was_detected_on(
    tmp_path: Path, clip: bytes
) -> None:
    avatar = registry(tmp_path).register(clip + b"trailing junk", name=None)
    folder = tmp_path / avatar.info.id
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "source.mp4", "track.npz"]
    stored = (folder / "source.mp4").read_bytes()
    assert stored != clip and b"trailing junk" not in stored
    reloaded = registry(tmp_path, NeverDetect()).get(avatar.info.id).track
    assert len(reloaded.frames) == len(avatar.track.frames) == 10
    for registered, loaded in zip(avatar.track.frames, reloaded.frames, strict=True):
        np.testing.assert_array_equal(loaded, registered)


def test_an_upload_over_the_byte_limit_is_refused(tmp_path: Path, png: bytes) -> None:
    with pytest.raises(PayloadTooLarge, match=f"{len(png)} bytes; the limit is 1000 bytes") as caught:
        registry(tmp_path, max_bytes=1000).register(png, name=None)
    assert (caught.value.code, caught.value.param) == ("avatar_file_too_large", "file")
    assert not list(tmp_path.iterdir())


def test_an_upload_over_the_pixel_limit_is_refused(tmp_path: Path, png: bytes) -> None:
    with pytest.raises(PayloadTooLarge, match="512x512") as caught:
        registry(tmp_path, max_pixels=512 * 512 - 1).register(png, name=None)
    assert caught.value.code == "avatar_too_large"
    assert registry(tmp_path, max_pixels=512 * 512).register(png, name=None).info.width == 512


def test_an_avatar_stored_as_its_upload_is_re_encoded_at_its_first_load(tmp_path: Path, png: bytes) -> None:
    avatar = registry(tmp_path).register(png, name=None)
    folder = tmp_path / avatar.info.id
    (folder / "source.png").unlink()
    (folder / "source").write_bytes(with_extras(png))  # how an earlier version kept it
    reloaded = registry(tmp_path, NeverDetect()).get(avatar.info.id)
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "source.png", "track.npz"]
    assert b"<script" not in (folder / "source.png").read_bytes()
    np.testing.assert_array_equal(reloaded.track.frames[0], avatar.track.frames[0])


def test_a_deleted_avatar_leaves_nothing_behind(tmp_path: Path, png: bytes) -> None:
    avatars = registry(tmp_path)
    avatar_id = avatars.register(png, name=None).info.id
    avatars.delete(avatar_id)
    assert not list(tmp_path.iterdir())
    with pytest.raises(NotFound):
        avatars.delete(avatar_id)
