"""A FileResponse over a file opened before answering: whole, Range and HEAD answers survive the file's removal."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Response

from comps.animation.opened import OpenedFileResponse

pytestmark = pytest.mark.anyio
CONTENT = bytes(range(256)) * 40


def removed_once_opened(tmp_path: Path) -> FastAPI:
    app = FastAPI()

    @app.api_route("/file", methods=["GET", "HEAD"])
    async def serve() -> Response:
        path = tmp_path / "video.mp4"
        path.write_bytes(CONTENT)
        handle = path.open("rb")
        path.unlink()  # a prune or a DELETE between the endpoint and the answer's first byte
        return OpenedFileResponse(handle, path, media_type="video/mp4")

    return app


async def test_an_opened_file_is_served_after_its_removal(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=removed_once_opened(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        whole = await client.get("/file")
        part = await client.get("/file", headers={"Range": "bytes=1000-1099"})
        head = await client.head("/file")
    assert whole.status_code == 200 and whole.content == CONTENT
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206 and part.content == CONTENT[1000:1100]
    assert part.headers["content-range"] == f"bytes 1000-1099/{len(CONTENT)}"
    assert head.status_code == 200 and head.headers["content-length"] == str(len(CONTENT)) and head.content == b""


async def test_a_range_past_the_end_is_416_in_the_envelope_with_the_length(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=removed_once_opened(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        beyond = await client.get("/file", headers={"Range": f"bytes={len(CONTENT)}-"})
        still = await client.get("/file", headers={"Range": "bytes=0-9"})  # the next answer is unaffected
    assert beyond.status_code == 416 and beyond.headers["content-type"] == "application/json"
    assert beyond.headers["content-range"] == f"bytes */{len(CONTENT)}"
    error = beyond.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request", "range_not_satisfiable") and error["message"]
    assert int(beyond.headers["content-length"]) == len(beyond.content)
    assert still.status_code == 206 and still.content == CONTENT[:10]


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=90-10", "items=0-9"])
async def test_a_malformed_range_is_400_in_the_envelope(tmp_path: Path, header: str) -> None:
    transport = httpx.ASGITransport(app=removed_once_opened(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        refused = await client.get("/file", headers={"Range": header})
    assert refused.status_code == 400 and refused.headers["content-type"] == "application/json", refused.text
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request", "bad_range")
    assert error["message"].startswith("the Range header is malformed: ") and len(error["message"]) > 32
