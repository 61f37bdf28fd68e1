from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import Response
from fastapi.responses import JSONResponse

from gateway.app import create_app
from gateway.settings import GatewaySettings


@asynccontextmanager
async def gateway(stack: Any, chatbot_for: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    chatbot = chatbot_for(stack)
    app = create_app(GatewaySettings(), orchestrator=chatbot)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client
    await chatbot.aclose()


@pytest.mark.anyio
async def test_video_range_request_is_passed_through_as_206(stack: Any, chatbot_for: Any) -> None:
    (stack.videos / "abc.mp4").write_bytes(bytes(range(100)))
    async with gateway(stack, chatbot_for) as client:
        whole = await client.get("/v1/videos/abc")
        part = await client.get("/v1/videos/abc", headers={"Range": "bytes=10-19"})
    assert whole.status_code == 200 and whole.content == bytes(range(100))
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206
    assert part.content == bytes(range(10, 20))
    assert part.headers["content-range"] == "bytes 10-19/100"


@pytest.mark.anyio
async def test_a_range_past_the_end_is_416_in_the_envelope_with_the_length(stack: Any, chatbot_for: Any) -> None:
    (stack.videos / "abc.mp4").write_bytes(bytes(range(100)))
    async with gateway(stack, chatbot_for) as client:
        beyond = await client.get("/v1/videos/abc", headers={"Range": "bytes=100-"})
    assert beyond.status_code == 416 and beyond.json()["error"]["message"].startswith("animation: ")
    assert beyond.headers["content-range"] == "bytes */100"  # where the file ends, for the client's next Range


@pytest.mark.anyio
async def test_missing_video_is_404_naming_the_animation_stage(stack: Any, chatbot_for: Any) -> None:
    async with gateway(stack, chatbot_for) as client:
        response = await client.get("/v1/videos/nope")
        odd = await client.get("/v1/videos/..%2Fetc")
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("animation: video nope not found")
    assert odd.status_code in (400, 404)
    assert "error" in odd.json()


@pytest.mark.anyio
async def test_avatars_are_listed_and_uploaded_through_the_gateway(stack: Any, chatbot_for: Any) -> None:
    async with gateway(stack, chatbot_for) as client:
        listed = await client.get("/v1/avatars")
        uploaded = await client.post("/v1/avatars", files={"file": ("face.png", b"\x89PNG....", "image/png")})
    assert listed.status_code == 200 and listed.json() == {"avatars": [{"id": "default"}]}
    assert uploaded.status_code == 201
    assert uploaded.json()["id"] == "new"
    assert uploaded.json()["type"].startswith("multipart/form-data; boundary=")
    assert uploaded.json()["bytes"] > len(b"\x89PNG....")


@pytest.mark.anyio
async def test_a_video_is_deleted_through_the_gateway(stack: Any, chatbot_for: Any) -> None:
    deleted: list[str] = []

    async def delete(video_id: str) -> Response:
        path = stack.videos / f"{video_id}.mp4"
        if video_id == "rendering":
            error = {"message": "still being rendered", "type": "invalid_request", "code": "video_in_progress"}
            return JSONResponse({"error": error}, 409)
        if not path.is_file():
            return JSONResponse({"error": {"message": f"video {video_id} not found", "type": "not_found"}}, 404)
        path.unlink()
        deleted.append(video_id)
        return Response(status_code=204)

    stack.apps["animation"].add_api_route("/v1/videos/{video_id}", delete, methods=["DELETE"])
    (stack.videos / "abc.mp4").write_bytes(b"video")
    async with gateway(stack, chatbot_for) as client:
        gone = await client.delete("/v1/videos/abc")
        again = await client.delete("/v1/videos/abc")
        busy = await client.delete("/v1/videos/rendering")
        odd = await client.delete("/v1/videos/..%2Fetc")
    assert gone.status_code == 204 and gone.content == b"" and deleted == ["abc"]
    assert again.status_code == 404 and again.json()["error"]["message"].startswith("animation: video abc not found")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "video_in_progress"
    assert odd.status_code in (400, 404) and deleted == ["abc"]
