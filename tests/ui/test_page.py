"""The page: its controls' mapping to the request, the player's state, the answer's flow, the media routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response, StreamingResponse

from comps.animation.backends import BACKENDS
from comps.core.answer_events import AnswerDelta, AnswerEvent, Done, Segment, Transcript, Video, encode_event
from comps.core.errors import install_error_handlers
from ui.app import add_media_routes
from ui.client import GatewayClient
from ui.page import MODES, RATES, Page, Progress, animation_choice, player_state
from ui.settings import UiSettings


@pytest.mark.parametrize(
    ("mode", "rate", "expected"),
    [
        ("default", "25", (None, 25.0)),
        ("default", "auto", (None, None)),  # the service's choice: no fps sent
        ("", "", (None, None)),
        ("wav2lip_gan", "12.5", ("wav2lip_gan", 12.5)),
        ("sadtalker", "12.5", ("sadtalker", None)),  # fixed at 25 fps: the rate is not sent
        ("sadtalker+gfpgan", "25", ("sadtalker+gfpgan", None)),
    ],
)
def test_mode_and_rate(mode: str, rate: str, expected: tuple[str | None, float | None]) -> None:
    assert animation_choice(mode, rate) == expected


def test_the_page_leaves_the_rate_to_the_service_by_default() -> None:
    assert RATES[0][1] == "auto" and animation_choice("default", RATES[0][1]) == (None, None)
    assert [float(value) for _, value in RATES[1:]] == [30.0, 25.0, 20.0, 15.0, 12.5]


def test_every_animation_mode_is_offered() -> None:
    offered = MODES[1:]
    assert offered == list(BACKENDS)


# --- The player, the answer's flow and the media routes, against a fake gateway in process ----------

LIVE = "b" * 32
MISSING = "0" * 32
WHOLE = b"the whole mp4"


def _gateway(events: list[AnswerEvent | str]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/avatarchatbot/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[str]:
            for event in events:
                yield event if isinstance(event, str) else encode_event(event)

        return StreamingResponse(body(), media_type="text/event-stream")

    @app.get("/v1/videos/{vid}")
    async def video(vid: str) -> Response:
        if vid == MISSING:
            return JSONResponse({"error": {"message": f"no video {vid}", "type": "not_found"}}, 404)
        return Response(WHOLE, media_type="video/mp4")

    @app.get("/v1/avatars/{avatar_id}/image")
    async def image(avatar_id: str) -> Response:
        if avatar_id != "robot":
            return JSONResponse({"error": {"message": f"no avatar {avatar_id}", "type": "not_found"}}, 404)
        return Response(b"png", media_type="image/png")

    return app


def _client(app: FastAPI) -> GatewayClient:
    return GatewayClient(base_url="http://gw:8888", timeout_s=10, transport=httpx.ASGITransport(app=app))


def test_the_player_state_names_poster_and_video_on_the_pages_origin() -> None:
    assert json.loads(player_state(None)) == {"poster": None, "video": None}
    video = Video(id=LIVE, url=f"http://gw:8888/v1/videos/{LIVE}", content_type='video/mp4; codecs="avc1.42C00C"')
    assert json.loads(player_state("my robot", video)) == {
        "poster": "avatar/my%20robot/image",
        "video": {"id": LIVE, "src": f"answer/{LIVE}", "type": 'video/mp4; codecs="avc1.42C00C"'},
    }


def test_progress_follows_the_video_to_done() -> None:
    progress = Progress()
    progress.apply(Video(id=LIVE, url="http://gw/v1/videos/x"))
    assert progress.video_url == "http://gw/v1/videos/x" and progress.status.startswith("Speaking")
    progress.apply(Done(transcript="q", answer="a", video_url="http://gw/v1/videos/y", duration_s=2.04, timings={}))
    assert progress.video_url == "http://gw/v1/videos/y" and progress.status == "Done: a 2.0 s video."


async def _ask(page: Page) -> list[tuple[Any, ...]]:
    seen = []
    async for shown in page.ask(None, "hello", "robot", "default", "25", "", []):
        download = shown[0]
        # The request's folder is removed once the handler ends: read the file while it is there.
        seen.append((Path(download).read_bytes() if download else None, *shown[1:]))
    return seen


@pytest.mark.anyio
async def test_ask_gives_the_player_the_video_before_it_is_done(tmp_path: Path) -> None:
    video = Video(id=LIVE, url=f"http://gw:8888/v1/videos/{LIVE}")
    events: list[AnswerEvent | str] = [
        Transcript(text="hello"),
        AnswerDelta(delta="Hi"),
        video,
        AnswerDelta(delta=" there"),
        Segment(index=0, text="x", id="s", video_url="http://gw:8888/v1/videos/s", video_path="/x"),  # ignored
        Done(transcript="hello", answer="Hi there", video_url=video.url, duration_s=1.5, timings={"total": 2.0}),
    ]
    async with _client(_gateway(events)) as client:
        seen = await _ask(Page(settings=UiSettings(), client=client, work_dir=tmp_path))
    answers = [shown[2] for shown in seen]
    players = [json.loads(shown[6]) for shown in seen]
    assert answers[:4] == ["", "Hi", "Hi", "Hi there"]  # the text as it is written
    assert [p["video"] for p in players[:2]] == [None, None]  # the avatar's still until the video event
    assert all(p["video"]["src"] == f"answer/{LIVE}" for p in players[2:])
    assert all(p["poster"] == "avatar/robot/image" for p in players)
    download, transcript, answer, status, chat, history, _ = seen[-1]
    assert download == WHOLE
    assert (transcript, answer, history) == ("hello", "Hi there", [("hello", "Hi there")])
    assert status.startswith("Done: a 1.5 s video.")
    assert chat[-1] == {"role": "assistant", "content": "Hi there"}


@pytest.mark.anyio
async def test_an_older_gateways_segments_are_joined_for_the_download(tmp_path: Path) -> None:
    events: list[AnswerEvent | str] = [
        Transcript(text="hello"),
        Segment(index=0, text="Hi.", id="s0", video_url="/v1/videos/s0", video_path="/x"),
        Done(transcript="hello", answer="Hi.", segments=1, timings={}),
    ]
    async with _client(_gateway(events)) as client:
        seen = await _ask(Page(settings=UiSettings(), client=client, work_dir=tmp_path))
    assert seen[-1][0] == WHOLE
    assert seen[-1][3] == "Done: 1 segment(s)."
    assert json.loads(seen[-1][6])["video"] is None


@pytest.mark.anyio
async def test_a_failure_after_the_video_keeps_the_player_and_shows_the_servers_words(tmp_path: Path) -> None:
    error = {"error": {"message": "animation stage failed: out of memory", "type": "upstream"}}
    events: list[AnswerEvent | str] = [
        Video(id=LIVE, url=f"http://gw:8888/v1/videos/{LIVE}"),
        f"event: error\ndata: {json.dumps(error)}\n\n",
    ]
    async with _client(_gateway(events)) as client:
        seen = await _ask(Page(settings=UiSettings(), client=client, work_dir=tmp_path))
    assert seen[-1][3] == "**Error:** animation stage failed: out of memory"
    assert json.loads(seen[-1][6])["video"]["id"] == LIVE
    assert seen[-1][0] is None
    assert list(tmp_path.iterdir()) == []  # the request's folder is gone


def _ui(client: GatewayClient) -> httpx.AsyncClient:
    app = FastAPI()
    install_error_handlers(app)
    add_media_routes(app, client)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui")


@pytest.mark.anyio
async def test_the_media_routes_proxy_the_gateway() -> None:
    async with _client(_gateway([])) as client, _ui(client) as ui:
        video = await ui.get(f"/answer/{LIVE}")
        assert (video.status_code, video.content, video.headers["content-type"]) == (200, WHOLE, "video/mp4")
        assert video.headers["cache-control"] == "no-store"
        image = await ui.get("/avatar/robot/image")
        assert (image.status_code, image.content, image.headers["content-type"]) == (200, b"png", "image/png")


@pytest.mark.anyio
async def test_the_media_routes_refuse_bad_ids_and_pass_the_gateways_errors_on() -> None:
    async with _client(_gateway([])) as client, _ui(client) as ui:
        bad = await ui.get("/answer/not-an-id")
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_request" and bad.json()["error"]["param"] == "video_id"
        missing = await ui.get(f"/answer/{MISSING}")
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == f"no video {MISSING}"
        assert missing.json()["error"]["type"] == "not_found"
        no_avatar = await ui.get("/avatar/nobody/image")
        assert (no_avatar.status_code, no_avatar.json()["error"]["message"]) == (404, "no avatar nobody")
        assert (await ui.get("/avatar/..bad/image")).status_code == 400
    async with GatewayClient(base_url="http://127.0.0.1:9", timeout_s=2) as away, _ui(away) as ui:
        unreachable = await ui.get(f"/answer/{LIVE}")
        assert unreachable.status_code == 502
        assert unreachable.json()["error"]["type"] == "upstream"
        assert "cannot be reached" in unreachable.json()["error"]["message"]
