"""Driving an animation app in-process over HTTP, and checking its answers and videos."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
from fastapi import FastAPI


def serve(app: FastAPI) -> _Served:
    return _Served(app)


class _Served:
    """The app's lifespan plus an ASGI client, as one async context."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __aenter__(self) -> httpx.AsyncClient:
        self._life = self.app.router.lifespan_context(self.app)
        await self._life.__aenter__()
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t", timeout=300)
        return self._http

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()
        await self._life.__aexit__(None, None, None)


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-count_frames", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    )
    return json.loads(out.stdout)


def check_video(path: Path, *, fps: float, seconds: float, frames: int) -> None:
    info = ffprobe(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["pix_fmt"], audio["codec_name"]) == ("h264", "yuv420p", "aac")
    num, den = (int(v) for v in video["r_frame_rate"].split("/"))
    assert num / den == fps
    assert int(video["nb_read_frames"]) == frames
    assert abs(float(video["duration"]) - seconds) <= 1 / fps  # within one frame of the audio
    assert abs(float(info["format"]["duration"]) - seconds) <= 1 / fps


def check_speech_video(path: Path, *, seconds: float, slack_s: float = 0.0) -> None:
    """A playable mp4 of speech: H.264 video and AAC audio, the video and the file lasting `seconds`.

    Within one frame, plus `slack_s` where `seconds` is itself only known that closely.
    """
    info = ffprobe(path)
    assert "mp4" in info["format"]["format_name"].split(","), info["format"]
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], audio["codec_name"]) == ("h264", "aac")
    num, den = (int(v) for v in video["r_frame_rate"].split("/"))
    assert int(video["nb_read_frames"]) > 0
    tolerance = den / num + slack_s
    assert abs(float(video["duration"]) - seconds) <= tolerance, (video["duration"], seconds)
    assert abs(float(info["format"]["duration"]) - seconds) <= tolerance, (info["format"]["duration"], seconds)


def envelope(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param", "request_id"} and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error
