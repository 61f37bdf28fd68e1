"""`WS /v1/animation/stream` end to end in-process: speech in, one growing fMP4 out, served while it grows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient
from support.animation_http import check_speech_video, serve
from support.models import speak
from support.wav2lip_weights import write_checkpoint

from comps.animation.app import create_app
from comps.animation.settings import AnimationSettings
from comps.animation.wav2lip.mel import frame_count
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
