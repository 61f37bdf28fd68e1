"""`LipSyncStream` with raw frames: one task speaks while another receives the frames, in-process and remote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from support.animation_http import serve
from support.avatar_media import astronaut
from support.models import speak
from support.servers import Served
from support.wav2lip_weights import write_checkpoint

from comps.animation.app import create_app
from comps.animation.settings import AnimationSettings
from comps.animation.wav2lip.mel import frame_count
from comps.core.errors import PayloadTooLarge
from megaservice.lipsync import LipSyncStream, open_lipsync

SR = 16_000
pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speak("Hello there, I speak while I am drawn.")[: int(1.6 * SR)]


def animation_app(tmp_path: Path, face: Path, **overrides: object) -> FastAPI:
    values: dict[str, object] = {
        "device": "cpu", "checkpoint_path": write_checkpoint(tmp_path / "wav2lip.pth"),
        "model_cache_dir": tmp_path / "cache", "offline": True, "face": face,
        "avatar_dir": tmp_path / "avatars", "output_dir": tmp_path / "videos", "fps": 25.0, "batch_size": 8,
        "max_audio_seconds": 3.0,
    } | overrides  # fmt: skip
    return create_app(AnimationSettings(**values))  # type: ignore[arg-type]


@pytest.fixture
async def app(tmp_path: Path, shared_dir: Path) -> AsyncIterator[FastAPI]:
    application = animation_app(tmp_path, shared_dir / "assets" / "avatar_astronaut.png")
    async with serve(application):
        yield application


async def speak_and_read(
    stream: LipSyncStream, speech: np.ndarray, *, before_end: int
) -> tuple[list[bytes], dict[str, Any], int]:
    """Speak `before_end` samples, wait for a frame while the speech is still open, speak the rest and end.

    Returns the frames, the `done` record, and how many frames had arrived when `send_end` was sent.
    """
    frames: list[bytes] = []
    done: dict[str, Any] = {}
    first = anyio.Event()
    before_end_frames = 0

    async def send() -> None:
        nonlocal before_end_frames
        for start in range(0, before_end, 4000):  # 250 ms pieces, as a TTS would send them
            await stream.speak(speech[start : min(start + 4000, before_end)])
        with anyio.fail_after(120):  # a generous deadline, not a measurement: frames come before the end
            await first.wait()
        await stream.speak(speech[before_end:])
        before_end_frames = len(frames)
        await stream.send_end()

    async def read() -> None:
        while isinstance(message := await stream.receive(), bytes):
            frames.append(message)
            first.set()
        done.update(message)

    async with anyio.create_task_group() as group:
        group.start_soon(read)
        group.start_soon(send)
    return frames, done, before_end_frames


async def test_in_process_frames_arrive_while_speaking(app: FastAPI, speech: np.ndarray) -> None:
    stream = await open_lipsync(base_url="http://t", app=app, options={"frames": True}, connect_timeout_s=5)
    try:
        assert (stream.content_type, stream.width, stream.height, stream.fps) == (
            "video/x-raw;format=I420",
            512,
            512,
            25.0,
        )
        frames, done, before_end = await speak_and_read(stream, speech, before_end=speech.size // 2)
    finally:
        await stream.aclose()
    assert before_end >= 1  # received while the speech was still being sent
    assert done["type"] == "done" and done["id"] == stream.id and done["video_url"] == ""
    assert done["frames"] == len(frames) == frame_count(speech.size, 25.0)
    assert {len(frame) for frame in frames} == {512 * 512 * 3 // 2}
    assert app.state.animation.queue.busy == 0


async def test_an_error_event_is_raised_by_receive(app: FastAPI) -> None:
    stream = await open_lipsync(base_url="http://t", app=app, options={"frames": True}, connect_timeout_s=5)
    try:
        await stream.speak(np.zeros(4 * SR, np.float32))  # over the 3 s limit
        with pytest.raises(PayloadTooLarge, match="animation") as caught:
            while True:
                await stream.receive()  # any frames made before the error, then the error
        assert caught.value.code == "audio_too_long"
    finally:
        await stream.aclose()


def test_remote_frames_over_aiohttps_default_message_limit(
    tmp_path: Path, shared_dir: Path, speech: np.ndarray
) -> None:
    face = tmp_path / "big.png"
    cv2.imwrite(str(face), cv2.resize(astronaut(shared_dir), (1856, 1536)))  # 4.3 MB frames: over aiohttp's 4 MiB
    app = animation_app(tmp_path, face, avatar_max_side=2048)
    short = speech[: int(0.6 * SR)]

    async def run(url: str) -> tuple[LipSyncStream, list[bytes], dict[str, Any]]:
        stream = await open_lipsync(base_url=url, app=None, options={"frames": True}, connect_timeout_s=5)
        try:
            frames, done, _ = await speak_and_read(stream, short, before_end=short.size // 2)
        finally:
            await stream.aclose()
        return stream, frames, done

    with Served(app) as served:
        stream, frames, done = anyio.run(run, served.url)
    assert (stream.width, stream.height) == (1856, 1536)
    assert done["frames"] == len(frames) == frame_count(short.size, 25.0)
    assert {len(frame) for frame in frames} == {1856 * 1536 * 3 // 2}
