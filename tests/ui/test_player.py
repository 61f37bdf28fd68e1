"""The page's MediaSource player in headless Chromium, against a fake gateway that streams a real fMP4 slowly."""

from __future__ import annotations

import asyncio
import io
import struct
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from PIL import Image
from support.browser import launch
from support.servers import Served

from comps.animation.fmp4 import LiveMp4Encoder
from comps.core.answer_events import AnswerDelta, Done, Transcript, Video, encode_event
from ui.app import create_app as ui_app
from ui.settings import UiSettings

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
QUESTION = "What is the capital of France?"
WRITTEN_FIRST = "The capital of France"  # sent before the video event; the rest waits for the test
ANSWER = WRITTEN_FIRST + " is Paris."
SIDE, FPS, SECONDS, SAMPLE_RATE = 192, 25, 5, 16_000
PIECE_INTERVAL_S = 0.3  # one fragment this often: the response stays open ~3 s while the page plays
DEADLINE_S = 180.0  # for a state to be reached on a loaded machine; never a pass/fail timing


def _face(mouth: float, tint: int) -> np.ndarray:
    """A BGR cartoon face, square; `mouth` in [0, 1] opens it."""
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    c = SIDE / 2
    image = np.zeros((SIDE, SIDE, 3), np.uint8)
    image[:] = (70 + tint, 50, 40)
    image[(x - c) ** 2 + (y - c) ** 2 < (0.4 * SIDE) ** 2] = (120, 190, 240)
    for eye_x in (0.37 * SIDE, 0.63 * SIDE):
        image[(x - eye_x) ** 2 + (y - 0.4 * SIDE) ** 2 < (0.05 * SIDE) ** 2] = (40, 30, 20)
    height = 0.01 * SIDE + 0.09 * SIDE * mouth
    image[((x - c) / (0.14 * SIDE)) ** 2 + ((y - 0.66 * SIDE) / height) ** 2 < 1] = (40, 40, 160)
    return image


def _avatar_png() -> bytes:
    out = io.BytesIO()
    Image.fromarray(_face(0.0, 0)[..., ::-1].copy()).save(out, format="PNG")
    return out.getvalue()


def _boxes(data: bytes) -> list[bytes]:
    """The top-level MP4 boxes of `data`, in order."""
    boxes, at = [], 0
    while at < len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        boxes.append(data[at : at + size])
        at += size
    return boxes


@dataclass
class FakeVideo:
    """A real fMP4 in the pieces the animation service sends: init segment and first batch, then a fragment each."""

    pieces: list[bytes]
    mime_type: str

    @classmethod
    def make(cls) -> FakeVideo:
        out: list[bytes] = []
        encoder = LiveMp4Encoder(width=SIDE, height=SIDE, fps=FPS, sink=out.append)
        per_frame = SAMPLE_RATE // FPS
        for i in range(SECONDS * FPS):
            t = np.arange(i * per_frame, (i + 1) * per_frame) / SAMPLE_RATE
            encoder.write_audio((0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
            encoder.write_frame(_face(0.5 + 0.5 * np.sin(i / 2), (i * 3) % 120))
            if i % 5 == 4:
                encoder.flush()  # batches of five, as the live render flushes: most fragments start on a P-frame
        encoder.close()
        boxes = _boxes(b"".join(out))
        assert [box[4:8] for box in boxes[:4]] == [b"ftyp", b"moov", b"moof", b"mdat"]
        pieces = [b"".join(boxes[:4])] + [b"".join(boxes[i : i + 2]) for i in range(4, len(boxes), 2)]
        return cls(pieces=pieces, mime_type=encoder.mime_type)


@dataclass
class FakeGateway:
    """The gateway's answer stream and video stream, recording when the video's first response ended."""

    video: FakeVideo
    video_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    rest_of_answer: threading.Event = field(default_factory=threading.Event)  # set by the test
    production_start: float | None = None  # monotonic; the first video request starts the production
    video_finished_at: float | None = None  # the first video response sent its last byte
    video_requests: int = 0

    def release_time(self, index: int) -> float:
        assert self.production_start is not None
        return self.production_start + index * PIECE_INTERVAL_S

    def app(self) -> FastAPI:
        app = FastAPI()
        png = _avatar_png()
        whole = b"".join(self.video.pieces)
        done_video = asyncio.Event()

        @app.get("/ready")
        async def ready() -> dict[str, str]:
            return {"status": "ready"}

        @app.get("/v1/avatars")
        async def avatars() -> Any:
            return {"avatars": [{"id": "robot", "name": "Robot", "kind": "image"}]}

        @app.get("/v1/avatars/robot/image")
        async def image() -> Response:
            return Response(png, media_type="image/png")

        @app.post("/v1/avatarchatbot/stream")
        async def stream(request: Request) -> StreamingResponse:
            base = str(request.base_url).rstrip("/")

            async def events() -> AsyncIterator[str]:
                yield encode_event(Transcript(text=QUESTION))
                for word in WRITTEN_FIRST.split(" "):
                    yield encode_event(AnswerDelta(delta=word if word == "The" else f" {word}"))
                # Announced before any frame exists; plain "video/mp4": the page reads the codecs from the bytes.
                yield encode_event(Video(id=self.video_id, url=f"{base}/v1/videos/{self.video_id}"))
                await asyncio.to_thread(self.rest_of_answer.wait, DEADLINE_S)
                yield encode_event(AnswerDelta(delta=ANSWER[len(WRITTEN_FIRST) :]))
                await asyncio.wait_for(done_video.wait(), DEADLINE_S)
                url = f"{base}/v1/videos/{self.video_id}"
                yield encode_event(Done(transcript=QUESTION, answer=ANSWER, video_url=url, duration_s=SECONDS,
                                        timings={"total": 1.0}))  # fmt: skip
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        @app.get("/v1/videos/{video_id}")
        async def video(video_id: str) -> Response:
            if video_id != self.video_id:
                return Response(b'{"error": {"message": "no video ' + video_id.encode() + b'", "type": "not_found"}}',
                                status_code=404, media_type="application/json")  # fmt: skip
            self.video_requests += 1
            if done_video.is_set():
                return Response(whole, media_type="video/mp4")
            if self.production_start is None:
                self.production_start = time.monotonic()

            async def live() -> AsyncIterator[bytes]:
                for index, piece in enumerate(self.video.pieces):
                    await asyncio.sleep(max(0.0, self.release_time(index) - time.monotonic()))
                    yield piece
                if self.video_finished_at is None:
                    self.video_finished_at = time.monotonic()
                done_video.set()

            return StreamingResponse(live(), media_type="video/mp4", headers={"Cache-Control": "no-store"})

        return app


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FakeGateway, str]]:
    gateway = FakeGateway(video=FakeVideo.make())
    with Served(gateway.app()) as fake:
        settings = UiSettings(gateway_url=fake.url, work_dir=tmp_path / "ui", log_level="WARNING")
        with Served(ui_app(settings)) as ui:
            yield gateway, ui.url


def _browser() -> Any:
    return launch("--autoplay-policy=no-user-gesture-required")


PLAYER = """() => {
    const v = document.querySelector('#answer-video video');
    const caption = document.querySelector('#answer-video .player-caption');
    return v && {t: v.currentTime, state: v.dataset.state || '', type: v.dataset.type || '', poster: v.poster,
                 error: v.error && v.error.code, muted: v.muted, paused: v.paused, src: v.currentSrc,
                 caption: caption ? caption.textContent : ''};
}"""


def _wait(what: str, probe: Any) -> Any:
    """Poll `probe` until it returns something truthy (a generous deadline: a state is awaited, not timed)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        seen = probe()
        if seen:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"never saw {what}")


def test_the_answer_plays_while_it_is_made(served: tuple[FakeGateway, str]) -> None:
    gateway, url = served
    ARTIFACTS.mkdir(exist_ok=True)
    manager, browser = _browser()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url, wait_until="load", timeout=int(DEADLINE_S * 1000))

        # Before any question: the chosen avatar's still is the player's poster.
        poster = _wait("the avatar's still as poster", lambda: (page.evaluate(PLAYER) or {}).get("poster"))
        assert poster.endswith("/avatar/robot/image")
        loaded = page.evaluate(
            "src => new Promise(ok => { const i = new Image(); i.onload = () => ok(i.naturalWidth);"
            " i.onerror = () => ok(0); i.src = src; })",
            poster,
        )
        assert loaded == SIDE
        page.screenshot(path=str(ARTIFACTS / "ui-player-avatar.png"), full_page=True)

        page.locator("#question textarea").fill(QUESTION)
        page.locator("#ask").click()

        # The text shows as it is written: the first words, while the rest is held back.
        answer_box = page.locator("#answer-text textarea")
        _wait("the first words of the answer", lambda: answer_box.input_value() == WRITTEN_FIRST)

        # The video plays while its response is still open.
        first = _wait("the video playing", lambda: (s := page.evaluate(PLAYER)) and s["t"] > 0 and s)
        still_streaming = gateway.video_finished_at is None
        later = _wait("the video advancing", lambda: (s := page.evaluate(PLAYER)) and s["t"] > first["t"] and s)
        page.screenshot(path=str(ARTIFACTS / "ui-player.png"), full_page=True)
        assert still_streaming, "the page only started playing once the whole video had been sent"
        assert first["error"] is None and later["error"] is None, later
        assert first["src"].startswith("blob:"), first  # MediaSource
        assert later["type"] == gateway.video.mime_type  # the codecs read from the init segment
        assert not later["muted"], "the answer plays with its sound"

        gateway.rest_of_answer.set()
        _wait("the whole answer", lambda: answer_box.input_value() == ANSWER)
        status = page.locator("#status")
        _wait("the answer done", lambda: "Done" in status.inner_text())
        _wait("the video ended", lambda: page.evaluate(PLAYER)["state"] == "ended")
        assert page.evaluate(PLAYER)["caption"] == ""
        page.screenshot(path=str(ARTIFACTS / "ui-player-done.png"), full_page=True)
        link = page.locator("#answer-file a").first.get_attribute("href") or ""
        assert link.endswith("answer.mp4"), link
        assert page.request.get(link).body() == b"".join(gateway.video.pieces)
        assert gateway.video_requests == 2  # the player's stream, then the page's download of the whole file
    finally:
        browser.close()
        manager.stop()
