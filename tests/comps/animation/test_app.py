"""The animation service end to end over HTTP: deterministic Wav2Lip checkpoints, real speech, real avatars."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import cv2
import httpx
import numpy as np
import pytest
from support.animation_http import check_video, envelope, serve
from support.avatar_media import astronaut, encode_clip, panned_frames
from support.gfpgan_weights import write_gfpgan_checkpoint
from support.models import speak
from support.wav2lip_weights import write_checkpoint

from comps.animation.app import create_app
from comps.animation.settings import AnimationSettings
from comps.core.audio import encode_wav
from comps.core.device import resolve_device
from comps.core.weights import WeightsMissingError

SR = 16_000
pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoints")
    write_checkpoint(folder / "wav2lip.pth")
    write_checkpoint(folder / "wav2lip_gan.pth")
    write_gfpgan_checkpoint(folder / "GFPGANv1.4.pth")
    return folder


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    audio = speak("Hello! I am your avatar, and I can talk.")
    assert audio.size >= 2 * SR and np.abs(audio[: 2 * SR]).max() > 0.1
    return audio


def clip_b64(speech: np.ndarray, seconds: float) -> str:
    return base64.b64encode(encode_wav(speech[: int(seconds * SR)], SR)).decode()


def settings_for(tmp_path: Path, checkpoints: Path, shared_dir: Path, **overrides: object) -> AnimationSettings:
    values: dict[str, object] = {
        "device": "cpu",
        "checkpoint_dir": checkpoints,
        "model_cache_dir": tmp_path / "cache",
        "offline": True,
        "face": shared_dir / "assets" / "avatar_astronaut.png",
        "avatar_dir": tmp_path / "avatars",
        "output_dir": tmp_path / "videos",
        "fps": 10.0,
        "batch_size": 8,
        "max_audio_seconds": 3.0,
        "max_concurrency": 2,
    } | overrides
    return AnimationSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def client(tmp_path: Path, checkpoints: Path, shared_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(tmp_path, checkpoints, shared_dir, modes=["wav2lip_gan"]))
    async with serve(app) as http:
        yield http


async def test_animation_end_to_end(client: httpx.AsyncClient, speech: np.ndarray, tmp_path: Path) -> None:
    r = await client.post("/v1/animation", json={"byte_str": clip_b64(speech, 2.0), "fps": 12})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"id", "video_path", "video_url", "duration_s", "frames", "fps"}
    assert (body["frames"], body["fps"], body["duration_s"]) == (24, 12.0, 2.0)
    path = Path(body["video_path"])
    assert path.parent == tmp_path / "videos" and path.name == f"{body['id']}.mp4"
    assert body["video_url"] == f"http://t/v1/videos/{body['id']}"
    check_video(path, fps=12, seconds=2.0, frames=24)

    full = await client.get(f"/v1/videos/{body['id']}")
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    assert full.content == path.read_bytes() and full.headers["accept-ranges"] == "bytes"
    part = await client.get(f"/v1/videos/{body['id']}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{path.stat().st_size}"
    assert part.content == full.content[100:200]
    assert not list((tmp_path / "videos").glob("*.partial.mp4"))


async def test_opea_wav2lip_endpoint_uses_the_defaults(client: httpx.AsyncClient, speech: np.ndarray) -> None:
    r = await client.post("/v1/wav2lip", json={"audio": clip_b64(speech, 1.0)})
    assert r.status_code == 200, r.text
    path = Path(r.json()["wav2lip_result"])
    check_video(path, fps=10, seconds=1.0, frames=10)  # FPS from the settings, the default avatar


async def test_concurrent_requests_get_their_own_videos(client: httpx.AsyncClient, speech: np.ndarray) -> None:
    short, long = await asyncio.gather(
        client.post("/v1/animation", json={"byte_str": clip_b64(speech, 1.0)}),
        client.post("/v1/animation", json={"byte_str": clip_b64(speech, 2.0)}),
    )
    assert short.status_code == long.status_code == 200
    a, b = short.json(), long.json()
    assert a["id"] != b["id"] and a["video_path"] != b["video_path"]
    assert (a["frames"], b["frames"]) == (10, 20)
    check_video(Path(a["video_path"]), fps=10, seconds=1.0, frames=10)
    check_video(Path(b["video_path"]), fps=10, seconds=2.0, frames=20)


async def test_video_avatar_registers_and_renders(
    client: httpx.AsyncClient, speech: np.ndarray, shared_dir: Path, tmp_path: Path
) -> None:
    clip = encode_clip(panned_frames(astronaut(shared_dir), 10, step_px=2), 10, tmp_path / "clip.mp4")
    r = await client.post("/v1/avatars", files={"file": ("me.mp4", clip, "video/mp4")}, data={"name": "Panning"})
    assert r.status_code == 201, r.text
    avatar = r.json()
    assert (avatar["name"], avatar["kind"], avatar["frames"], avatar["fps"], avatar["default"]) == (
        "Panning",
        "video",
        10,
        10.0,
        False,
    )
    r = await client.post("/v1/animation", json={"byte_str": clip_b64(speech, 1.2), "avatar": avatar["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["fps"] == 10.0  # the video avatar's own rate
    check_video(Path(r.json()["video_path"]), fps=10, seconds=1.2, frames=12)


async def test_avatar_resources(client: httpx.AsyncClient, shared_dir: Path) -> None:
    png = (shared_dir / "assets" / "avatar_astronaut.png").read_bytes()
    created = (await client.post("/v1/avatars", files={"file": ("astro.png", png, "image/png")})).json()
    assert (created["name"], created["kind"], created["frames"]) == ("astro", "image", 1)
    listed = (await client.get("/v1/avatars")).json()["avatars"]
    assert [a["id"] for a in listed] == ["default", created["id"]] and listed[0]["default"] is True
    assert (await client.get(f"/v1/avatars/{created['id']}")).json() == created
    image = await client.get(created["image_url"].removeprefix("http://t"))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR).shape == (320, 320, 3)
    assert (await client.delete(f"/v1/avatars/{created['id']}")).status_code == 204
    envelope(await client.get(f"/v1/avatars/{created['id']}"), 404)
    envelope(await client.delete("/v1/avatars/default"), 400, "default_avatar")


async def test_bad_inputs_get_a_4xx_in_the_envelope(client: httpx.AsyncClient, speech: np.ndarray) -> None:
    good = clip_b64(speech, 0.5)
    post = client.post
    envelope(await post("/v1/animation", json={"byte_str": "%%% not base64 %%%"}), 400, "invalid_base64")
    envelope(
        await post("/v1/animation", json={"byte_str": base64.b64encode(b"plain text" * 50).decode()}), 400, "not_audio"
    )
    envelope(await post("/v1/animation", json={"byte_str": ""}), 400)
    envelope(await post("/v1/animation", json={}), 400, "validation_error")
    too_long = base64.b64encode(encode_wav(np.zeros(4 * SR, np.float32), SR)).decode()
    envelope(await post("/v1/animation", json={"byte_str": too_long}), 413, "audio_too_long")
    envelope(await post("/v1/animation", json={"byte_str": good, "avatar": "nosuchavatar"}), 404, "avatar_not_found")
    envelope(
        await post("/v1/animation", json={"byte_str": good, "avatar": "../../etc/passwd"}), 400, "invalid_avatar_id"
    )
    envelope(await post("/v1/animation", json={"byte_str": good, "inference_mode": "musetalk"}), 400, "unknown_mode")
    envelope(
        await post("/v1/animation", json={"byte_str": good, "inference_mode": "wav2lip+gfpgan"}),
        400,
        "mode_not_enabled",
    )
    envelope(await post("/v1/animation", json={"byte_str": good, "fps": 0}), 400, "validation_error")
    envelope(await post("/v1/wav2lip", json={"audio": "@@@"}), 400, "invalid_base64")
    ok, gray = cv2.imencode(".png", np.full((200, 200, 3), 128, np.uint8))
    envelope(await post("/v1/avatars", files={"file": ("gray.png", gray.tobytes(), "image/png")}), 422, "no_face")
    envelope(
        await post("/v1/avatars", files={"file": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")}),
        400,
        "invalid_avatar",
    )
    envelope(await post("/v1/avatars", files={"file": ("x.txt", b"hello " * 100, "text/plain")}), 400, "invalid_avatar")
    envelope(await post("/v1/avatars", data={"name": "no file"}), 400)
    envelope(await client.get("/v1/videos/" + "0" * 32), 404)
    envelope(await client.get("/v1/videos/..secret"), 400, "invalid_video_id")
    envelope(await client.get("/v1/videos/..%2F..%2Fsecret"), 404)  # never reaches a handler
    envelope(await client.get("/v1/avatars/nosuch/image"), 404)


async def test_gfpgan_mode_and_the_gan_checkpoint(
    tmp_path: Path, checkpoints: Path, shared_dir: Path, speech: np.ndarray
) -> None:
    settings = settings_for(
        tmp_path, checkpoints, shared_dir, inference_mode="wav2lip_gan", modes=["wav2lip+gfpgan", "wav2lip"]
    )
    app = create_app(settings)
    async with serve(app) as http:
        backends = app.state.animation.backends
        # One Wav2Lip-GAN network for both modes on wav2lip_gan.pth, holding the one GFPGAN; another for wav2lip.pth.
        assert backends["wav2lip_gan"].renderer is backends["wav2lip+gfpgan"].renderer
        assert backends["wav2lip_gan"].renderer.enhancer is not None
        assert backends["wav2lip"].renderer is not backends["wav2lip_gan"].renderer
        assert backends["wav2lip"].renderer.enhancer is None
        request = {"byte_str": clip_b64(speech, 0.25), "fps": 4}  # one frame: full-size GFPGAN is slow on CPU
        plain = await http.post("/v1/animation", json=request)
        enhanced = await http.post("/v1/animation", json=request | {"inference_mode": "wav2lip+gfpgan"})
        opea = await http.post("/v1/animation", json=request | {"inference_mode": "wav2lip_only"})
    assert plain.status_code == enhanced.status_code == opea.status_code == 200, enhanced.text
    assert enhanced.json()["frames"] == plain.json()["frames"] == 1
    check_video(Path(enhanced.json()["video_path"]), fps=4, seconds=0.25, frames=1)
    first = [_first_frame(Path(r.json()["video_path"])) for r in (plain, enhanced)]
    difference = np.abs(first[0].astype(int) - first[1]).mean(axis=2)
    assert difference[70:170, 180:270].mean() > 5  # GFPGAN replaced the face
    assert difference[:40, :].mean() < 2 and difference[-40:, :].mean() < 2  # far from it: compression noise only


def _first_frame(path: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    ok, frame = capture.read()
    capture.release()
    assert ok
    return frame


async def test_without_face_a_request_must_name_an_avatar(
    tmp_path: Path, checkpoints: Path, shared_dir: Path, speech: np.ndarray
) -> None:
    async with serve(create_app(settings_for(tmp_path, checkpoints, shared_dir, face=None))) as http:
        assert (await http.get("/v1/avatars")).json() == {"avatars": []}
        envelope(await http.post("/v1/animation", json={"byte_str": clip_b64(speech, 0.5)}), 400, "avatar_required")


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({}, r"'wav2lip\.pth' not found.*avatarchat download wav2lip"),
        ({"inference_mode": "wav2lip+gfpgan"}, r"'wav2lip_gan\.pth' not found.*avatarchat download wav2lip"),
        (
            {"checkpoint_path": Path("/nonexistent/wav2lip_gan.pth")},
            r"/nonexistent/wav2lip_gan\.pth.*avatarchat download wav2lip",
        ),
    ],
)
async def test_missing_checkpoint_stops_start_up(
    tmp_path: Path, shared_dir: Path, overrides: dict[str, object], pattern: str
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    app = create_app(settings_for(tmp_path, empty, shared_dir, **overrides))
    with pytest.raises(WeightsMissingError, match=pattern):
        async with app.router.lifespan_context(app):
            pass


async def test_missing_gfpgan_names_its_file(tmp_path: Path, shared_dir: Path) -> None:
    folder = tmp_path / "only_wav2lip"
    write_checkpoint(folder / "wav2lip_gan.pth")
    app = create_app(settings_for(tmp_path, folder, shared_dir, inference_mode="wav2lip+gfpgan"))
    with pytest.raises(WeightsMissingError, match=r"GFPGANv1\.4\.pth.*avatarchat download gfpgan"):
        async with app.router.lifespan_context(app):
            pass


@pytest.mark.parametrize(("setting", "expected"), [(None, None), (False, "fp32"), (True, "bf16")])
async def test_the_start_logs_whether_wav2lip_runs_in_bf16(
    tmp_path: Path,
    checkpoints: Path,
    shared_dir: Path,
    caplog: pytest.LogCaptureFixture,
    setting: bool | None,
    expected: str | None,
) -> None:
    caplog.set_level(logging.INFO, logger="comps.animation.backends.wav2lip")
    async with serve(create_app(settings_for(tmp_path, checkpoints, shared_dir, bf16=setting))):
        pass
    native = resolve_device("cpu").native_bf16
    chosen = expected or ("bf16" if native else "fp32")  # auto: bf16 exactly where the CPU has native kernels
    why = "ANIMATION_BF16=auto" if setting is None else "as ANIMATION_BF16 sets"
    assert f"Wav2Lip runs in {chosen} ({why}; {'native' if native else 'no native'} bf16 kernels here)" in caplog.text


async def test_limits_answer_in_the_envelope(
    tmp_path: Path, checkpoints: Path, shared_dir: Path, speech: np.ndarray
) -> None:
    settings = settings_for(
        tmp_path,
        checkpoints,
        shared_dir,
        avatar_max_bytes=100_000,
        avatar_max_pixels=300_000,  # the astronaut (FACE) has 262144
        max_frames=15,
        max_concurrency=1,
        max_queue=0,
    )
    app = create_app(settings)
    png = (shared_dir / "assets" / "avatar_astronaut.png").read_bytes()
    assert len(png) > 100_000
    ok, flat = cv2.imencode(".png", np.full((600, 600, 3), 128, np.uint8))  # 360000 pixels in a few KB
    assert ok and len(flat) < 100_000
    async with serve(app) as http:
        error = envelope(await http.post("/v1/avatars", files={"file": ("a.png", png)}), 413, "avatar_file_too_large")
        assert error["param"] == "file" and f"{len(png)} bytes" in error["message"]
        error = envelope(await http.post("/v1/avatars", files={"file": ("b.png", flat.tobytes())}), 413)
        assert (error["code"], error["param"]) == ("avatar_too_large", "file") and "600x600" in error["message"]
        error = envelope(await http.post("/v1/animation", json={"byte_str": clip_b64(speech, 2.0)}), 413)
        assert (error["code"], error["param"]) == ("too_many_frames", "byte_str") and "20 frames" in error["message"]
        async with app.state.animation.queue.slot():  # the one render slot is taken, and no place to wait
            busy = await http.post("/v1/animation", json={"byte_str": clip_b64(speech, 1.0)})
        envelope(busy, 503, "queue_full")
        assert busy.headers["retry-after"] == "2"
        assert not list((tmp_path / "avatars").iterdir()) and not list((tmp_path / "videos").iterdir())


async def test_videos_are_deleted_on_request_and_expire(
    tmp_path: Path, checkpoints: Path, shared_dir: Path, speech: np.ndarray
) -> None:
    app = create_app(settings_for(tmp_path, checkpoints, shared_dir, video_ttl_s=1.0))
    async with serve(app) as http:
        rendered = await http.post("/v1/animation", json={"byte_str": clip_b64(speech, 0.5)})
        assert rendered.status_code == 200, rendered.text
        video_id = rendered.json()["id"]
        assert (await http.delete(f"/v1/videos/{video_id}")).status_code == 204
        envelope(await http.get(f"/v1/videos/{video_id}"), 404)
        envelope(await http.delete(f"/v1/videos/{video_id}"), 404)
        envelope(await http.delete("/v1/videos/..secret"), 400, "invalid_video_id")

        store = app.state.animation.store
        live_id, partial = store.reserve_live()  # a stream being rendered
        error = envelope(await http.delete(f"/v1/videos/{live_id}"), 409, "video_in_progress")
        assert error["type"] == "invalid_request" and partial.exists()
        store.discard(live_id)

        expired = store.final_path("f" * 32)
        expired.write_bytes(b"an old video")
        os.utime(expired, (0, 0))
        with anyio.fail_after(30):  # the store's timer prunes every second at this TTL
            while expired.exists():
                await anyio.sleep(0.1)
        envelope(await http.get(f"/v1/videos/{'f' * 32}"), 404)
