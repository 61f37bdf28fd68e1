"""`WS /v1/animation/stream` end to end in-process: speech in, one growing fMP4 (or raw I420 frames) out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import cv2
import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient
from support.animation_http import check_speech_video, ffprobe, serve
from support.avatar_media import astronaut
from support.models import speak
from support.wav2lip_weights import deterministic_wav2lip, write_checkpoint

from comps.animation import service as service_module
from comps.animation.app import create_app
from comps.animation.backends.wav2lip import Wav2LipMode
from comps.animation.rawframes import RawFrames, even_size
from comps.animation.render import Wav2LipRenderer
from comps.animation.settings import AnimationSettings
from comps.animation.streaming import pcm16
from comps.animation.wav2lip.mel import frame_count
from comps.core.device import resolve_device
from comps.core.errors import InvalidRequest
from megaservice.asgi import StreamingASGITransport
from megaservice.lipsync import open_lipsync

SR = 16_000
pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speak("Hello there, I speak while I am drawn.")[: int(1.6 * SR)]


def settings(tmp_path: Path, shared_dir: Path, **overrides: object) -> AnimationSettings:
    values: dict[str, object] = {
        "device": "cpu", "checkpoint_path": write_checkpoint(tmp_path / "wav2lip.pth"),
        "model_cache_dir": tmp_path / "cache", "offline": True,
        "face": shared_dir / "assets" / "avatar_astronaut.png", "avatar_dir": tmp_path / "avatars",
        "output_dir": tmp_path / "videos", "fps": 25.0, "batch_size": 8, "max_audio_seconds": 3.0,
    } | overrides  # fmt: skip
    return AnimationSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def app(tmp_path: Path, shared_dir: Path) -> AsyncIterator[object]:
    application = create_app(settings(tmp_path, shared_dir))
    async with serve(application):
        yield application


async def test_speech_in_pieces_becomes_one_video_served_while_it_grows(
    app: object, speech: np.ndarray, tmp_path: Path
) -> None:
    stream = await open_lipsync(base_url="http://t", app=app, options={}, connect_timeout_s=5)  # type: ignore[arg-type]
    assert len(stream.id) == 32 and stream.video_url == f"http://t/v1/videos/{stream.id}"
    received = bytearray()
    grew_while_open: list[int] = []

    async def watch() -> None:
        transport = StreamingASGITransport(app)  # type: ignore[arg-type]
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://t") as client,
            client.stream("GET", f"/v1/videos/{stream.id}") as response,
        ):
            assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
            async for chunk in response.aiter_raw():
                received.extend(chunk)

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        half = speech.size // 2
        for start in range(0, half, 4000):  # 250 ms pieces, as a TTS would send them
            await stream.speak(speech[start : min(start + 4000, half)])
        with anyio.fail_after(120):  # a generous deadline, not a measurement: the video must grow before the end
            while b"moof" not in received:
                await anyio.sleep(0.02)
        grew_while_open.append(len(received))
        await stream.speak(speech[half:])
        done = await stream.end()
    await stream.aclose()
    assert grew_while_open[-1] > 0  # bytes reached the reader before the speech had ended
    assert done["frames"] == frame_count(speech.size, 25.0) and done["fps"] == 25.0
    stored = Path(done["video_path"])
    assert stored.read_bytes() == bytes(received)  # what was streamed is what is stored
    check_speech_video(stored, seconds=speech.size / SR, slack_s=1024 / SR)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:  # type: ignore[arg-type]
        ranged = await client.get(f"/v1/videos/{stream.id}", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.content == stored.read_bytes()[:100]


async def stream_speech(app: object, speech: np.ndarray, options: dict[str, object]) -> tuple[float | None, dict]:
    """Stream `speech` whole; (the rate `started` named, the `done` record)."""
    stream = await open_lipsync(base_url="http://t", app=app, options=options, connect_timeout_s=5)  # type: ignore[arg-type]
    try:
        await stream.speak(speech)
        return stream.fps, await stream.end()
    finally:
        await stream.aclose()


async def test_auto_measures_the_cpu_at_start_and_streams_at_half_rate_where_it_renders_too_slowly(
    tmp_path: Path, shared_dir: Path, speech: np.ndarray
) -> None:
    application = create_app(settings(tmp_path, shared_dir, stream_rate="auto"))
    async with serve(application):
        pace = application.state.animation.pace()  # the default mode's (each loaded mode has its own)
        assert pace is application.state.animation.pace("wav2lip_only")  # OPEA's name for the same mode
        assert pace.frames_per_s is not None and pace.frames_per_s > 0  # the warm-up measured this CPU
        pace.frames_per_s = 10.0  # slower than 1.2 x 25 frames/s
        rate, done = await stream_speech(application, speech, {})
        assert rate == done["fps"] == 12.5 and done["frames"] == frame_count(speech.size, 12.5)
        check_speech_video(Path(done["video_path"]), seconds=speech.size / SR, slack_s=1024 / SR)
        info = ffprobe(Path(done["video_path"]))
        assert next(s for s in info["streams"] if s["codec_type"] == "video")["r_frame_rate"] == "25/2"
        assert pace.frames_per_s != 10.0  # the stream's own render was measured into the pace
        rate, done = await stream_speech(application, speech, {"fps": 25})  # a rate asked for is kept
        assert rate == done["fps"] == 25.0
        pace.frames_per_s = 1000.0
        rate, done = await stream_speech(application, speech, {})
        assert rate == done["fps"] == 25.0 and done["frames"] == frame_count(speech.size, 25.0)


async def test_a_slow_start_up_render_stops_after_its_first_batch(app: object, monkeypatch: pytest.MonkeyPatch) -> None:
    animation = app.state.animation  # type: ignore[attr-defined]
    assert animation.pace().frames_per_s is None  # ANIMATION_STREAM_RATE=full (the tests' pin): no warm-up ran
    observed: list[tuple[int, float]] = []
    monkeypatch.setattr(animation.pace(), "observe", lambda frames, seconds: observed.append((frames, seconds)))
    animation.warm_up()
    assert [frames for frames, _ in observed] == [8]  # the last of the batches 2, 4, 8, 8
    monkeypatch.setattr(service_module, "WARM_UP_S", 0.0)  # as if each batch took long (GFPGAN on a CPU)
    animation.warm_up()
    assert [frames for frames, _ in observed] == [8, 2]


async def test_half_streams_at_half_rate_and_full_never_does(
    tmp_path: Path, shared_dir: Path, speech: np.ndarray
) -> None:
    for setting, expected in (("half", 12.5), ("full", 25.0)):
        (tmp_path / setting).mkdir()
        application = create_app(settings(tmp_path / setting, shared_dir, stream_rate=setting))
        async with serve(application):
            application.state.animation.pace().frames_per_s = 1.0  # measured slow: only `auto` would care
            rate, done = await stream_speech(application, speech[: SR // 2], {})
        assert rate == done["fps"] == expected


async def test_a_client_that_goes_away_stops_the_render_and_leaves_nothing(
    app: object, speech: np.ndarray, tmp_path: Path
) -> None:
    stream = await open_lipsync(base_url="http://t", app=app, options={}, connect_timeout_s=5)  # type: ignore[arg-type]
    await stream.speak(speech[: SR // 2])
    await anyio.sleep(0.2)
    await stream.aclose()  # gone mid-answer
    videos = tmp_path / "videos"
    assert not any(videos.glob("*.mp4")), list(videos.iterdir())  # the partial file is removed, nothing committed
    animation = app.state.animation  # type: ignore[attr-defined]
    assert animation.queue.busy == 0  # the render's slot is free: its worker thread has returned
    assert animation.live == {}


def test_protocol_mistakes_are_error_events_in_the_envelope(tmp_path: Path, shared_dir: Path) -> None:
    app = create_app(settings(tmp_path, shared_dir, modes=["wav2lip"]))
    with TestClient(app) as client:
        for first, code in [
            ('{"type": "start", "fps": 0}', "bad_start"),
            ("not json", "bad_start"),
            ('{"type": "start", "inference_mode": "nope"}', "unknown_mode"),
            ('{"type": "start", "avatar": "nobody"}', None),
        ]:
            with client.websocket_connect("/v1/animation/stream") as ws:
                ws.send_text(first)
                error = ws.receive_json()
                assert error["type"] == "error" and error["error"]["type"] in ("invalid_request", "not_found"), error
                if code is not None:
                    assert error["error"]["code"] == code
        with client.websocket_connect("/v1/animation/stream") as ws:
            ws.send_bytes(b"\x00\x01")  # speech before the start
            assert ws.receive_json()["error"]["code"] == "bad_start"
        with client.websocket_connect("/v1/animation/stream") as ws:
            ws.send_text('{"type": "start"}')
            assert ws.receive_json()["type"] == "started"
            ws.send_bytes(b"\x00\x01\x02")  # half a sample
            assert ws.receive_json()["error"]["code"] == "bad_pcm"
        with client.websocket_connect("/v1/animation/stream") as ws:
            ws.send_text('{"type": "start"}')
            ws.receive_json()
            ws.send_text('{"type": "silence", "seconds": 5}')  # over the 3 s limit
            assert ws.receive_json()["error"]["code"] == "audio_too_long"
    assert not any((tmp_path / "videos").glob("*.mp4"))


def test_a_stream_longer_than_the_frame_limit_is_refused(tmp_path: Path, shared_dir: Path) -> None:
    app = create_app(settings(tmp_path, shared_dir, max_frames=20))  # 0.8 s at 25 fps, 1.6 s at 12.5
    with TestClient(app) as client:
        for start, refused in (('{"type": "start"}', True), ('{"type": "start", "fps": 12.5}', False)):
            with client.websocket_connect("/v1/animation/stream") as ws:
                ws.send_text(start)
                assert ws.receive_json()["type"] == "started"
                ws.send_text('{"type": "silence", "seconds": 0.9}')
                if refused:
                    error = ws.receive_json()["error"]
                    assert (error["code"], error["type"]) == ("too_many_frames", "payload_too_large"), error
                    assert "ANIMATION_MAX_FRAMES" in error["message"]
                else:
                    ws.send_text('{"type": "end"}')
                    while (message := ws.receive()).get("text") is None:
                        pass  # the video's bytes
                    done = json.loads(message["text"])
                    assert done["type"] == "done" and done["frames"] == frame_count(int(0.9 * SR), 12.5)  # under 20


def test_lipsync_client_turns_an_error_event_into_our_error() -> None:
    async def refuse(scope: dict, receive: object, send: object) -> None:
        await receive()  # type: ignore[operator]
        await send({"type": "websocket.accept"})  # type: ignore[operator]
        await receive()  # type: ignore[operator]
        text = '{"type": "error", "error": {"message": "no such avatar", "type": "invalid_request", "code": "x"}}'
        await send({"type": "websocket.send", "text": text})  # type: ignore[operator]

    async def run() -> None:
        with pytest.raises(InvalidRequest, match="animation: no such avatar"):
            await open_lipsync(base_url="http://t", app=refuse, options={}, connect_timeout_s=5)  # type: ignore[arg-type]

    anyio.run(run)


# --- raw frames (`"frames": true`) ---


class FramewiseRenderer(Wav2LipRenderer):
    """The real renderer, its network called once per frame (as in test_session): batching changes nothing.

    With batched calls oneDNN picks other convolution kernels for the live batch sizes (2, 4, 8) than
    for the whole render's, which moves a few pixels by a grey level; one frame per call on both
    paths makes the comparison exact.
    """

    def generate(self, mel: np.ndarray, faces: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [super(FramewiseRenderer, self).generate(mel[i : i + 1], faces[i : i + 1]) for i in range(len(faces))]
        )


@pytest.fixture(scope="module")
def framewise() -> Wav2LipMode:
    renderer = FramewiseRenderer(model=deterministic_wav2lip(), device=resolve_device("cpu"), batch_size=8)
    return Wav2LipMode(renderer=renderer, enhance=False)


def stored_files(tmp_path: Path) -> list[Path]:
    videos = tmp_path / "videos"
    return list(videos.iterdir()) if videos.exists() else []


def test_raw_frames_are_i420_of_the_even_part_of_each_frame() -> None:
    out: list[bytes] = []
    frames = RawFrames(width=6, height=4, sink=out.append)
    bgr = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)  # odd sides: last row/column go
    frames.write_audio(np.zeros(160, np.float32))  # dropped
    frames.write_frame(bgr)
    frames.flush()
    frames.close()
    assert even_size(7, 5) == (6, 4) and frames.frame_bytes == 6 * 4 * 3 // 2 == len(out[0])
    even = np.ascontiguousarray(bgr[:4, :6])
    planes = np.frombuffer(out[0], np.uint8)
    assert out == [cv2.cvtColor(even, cv2.COLOR_BGR2YUV_I420).tobytes()]
    b, g, r = (even[..., c].astype(np.float64) for c in range(3))  # BT.601 limited range; chroma of each 2x2's top left
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    np.testing.assert_allclose(planes[:24].reshape(4, 6), y, atol=1)
    np.testing.assert_allclose(planes[24:30].reshape(2, 3), u[::2, ::2], atol=1)
    np.testing.assert_allclose(planes[30:].reshape(2, 3), v[::2, ::2], atol=1)
    with pytest.raises(ValueError, match="even sides"):
        RawFrames(width=5, height=4, sink=out.append)
    with pytest.raises(ValueError, match="at least"):
        frames.write_frame(bgr[:3])


def test_frames_mode_sends_the_whole_renders_frames_as_i420_and_stores_nothing(
    tmp_path: Path, shared_dir: Path, speech: np.ndarray, framewise: Wav2LipMode
) -> None:
    face = tmp_path / "odd.png"
    cv2.imwrite(str(face), astronaut(shared_dir)[:511, :509])  # odd sides: the frames lose the last row and column
    app = create_app(settings(tmp_path, shared_dir, face=face), backend=framewise)
    pcm = (np.clip(speech, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    received: list[bytes] = []
    with TestClient(app) as client, client.websocket_connect("/v1/animation/stream") as ws:
        ws.send_text('{"type": "start", "frames": true, "video": true}')  # `video` is ignored
        started = ws.receive_json()
        for start in range(0, len(pcm), 8000):  # 250 ms pieces
            ws.send_bytes(pcm[start : start + 8000])
        ws.send_text('{"type": "end"}')
        while (message := ws.receive()).get("bytes") is not None:
            received.append(message["bytes"])
        done = json.loads(message["text"])
        assert ws.receive()["type"] == "websocket.close"
        animation = app.state.animation
        assert animation.live == {} and animation.queue.busy == 0
        track = animation.registry.get("default").track
    assert len(started["id"]) == 32 and int(started["id"], 16) >= 0
    assert started == {
        "type": "started", "id": started["id"], "video_url": "", "content_type": "video/x-raw;format=I420",
        "width": 508, "height": 510, "fps": 25.0,
    }  # fmt: skip
    whole = list(framewise.renderer.frames(track, pcm16(pcm), fps=25.0, enhance=False))  # the samples it received
    assert done == {
        "type": "done", "id": started["id"], "video_url": "", "video_path": "",
        "frames": len(whole), "fps": 25.0, "duration_s": len(whole) / 25.0,
    }  # fmt: skip
    assert len(whole) == frame_count(speech.size, 25.0) == len(received)
    for index, (frame, reference) in enumerate(zip(received, whole, strict=True)):
        assert len(frame) == 508 * 510 * 3 // 2
        assert frame == cv2.cvtColor(reference[:510, :508], cv2.COLOR_BGR2YUV_I420).tobytes(), f"frame {index}"
    assert stored_files(tmp_path) == []  # no partial file, no video


async def test_a_frames_client_that_goes_away_stops_the_render(app: object, speech: np.ndarray, tmp_path: Path) -> None:
    stream = await open_lipsync(base_url="http://t", app=app, options={"frames": True}, connect_timeout_s=5)  # type: ignore[arg-type]
    assert (stream.width, stream.height, stream.fps, stream.video_url) == (512, 512, 25.0, "")
    await stream.speak(speech)  # no end: the answer is cut short
    first = await stream.receive()
    assert isinstance(first, bytes) and len(first) == 512 * 512 * 3 // 2
    await stream.aclose()  # gone mid-answer
    animation = app.state.animation  # type: ignore[attr-defined]
    assert animation.queue.busy == 0  # the render's slot is free: its worker thread has returned
    assert animation.live == {} and stored_files(tmp_path) == []


async def test_a_frames_client_that_does_not_read_holds_the_render(app: object, speech: np.ndarray) -> None:
    stream = await open_lipsync(base_url="http://t", app=app, options={"frames": True}, connect_timeout_s=5)  # type: ignore[arg-type]
    try:
        await stream.speak(speech)
        await stream.send_end()
        await anyio.sleep(1.5)  # a few frames wait in the socket's buffer; the worker waits for them to be read
        animation = app.state.animation  # type: ignore[attr-defined]
        assert animation.queue.busy == 1
        frames = 0
        while isinstance(message := await stream.receive(), bytes):
            frames += 1
        assert message["type"] == "done" and message["frames"] == frames == frame_count(speech.size, 25.0)
    finally:
        await stream.aclose()
    assert animation.queue.busy == 0
