"""Every path a request can name stays inside its store: `..`, absolute paths, encoded separators, NUL bytes.

The request-side names that become files are avatar ids (path parameters, the `avatar` field of
`POST /v1/animation`, the stream's start, the live mode's query) and video ids; an upload's file
name and `name` are display text only. Files planted beside the stores, each a valid avatar or video,
show that no refused name ever reached them: a name that escaped would find them and answer 200, or
delete them. (Checkpoint and asset paths are the operator's settings, never a request's.)
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI, Request, Response
from support.animation_http import serve

from comps.animation.app import create_app
from comps.animation.backends.base import Capabilities
from comps.animation.settings import AnimationSettings
from comps.core.audio import encode_wav
from comps.core.errors import InvalidRequest
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from megaservice.avatarchatbot import AvatarChatbot
from megaservice.lipsync import open_lipsync
from tests.gateway.conftest import build_stack

pytestmark = pytest.mark.anyio

# As they appear in a URL path (percent-encoded where a client must encode) ...
URL_NAMES = [
    "..", "%2e%2e", "..%2F..%2Fvictim", "%2e%2e%2f%2e%2e%2fvictim", "..%5C..%5Cvictim", "%2Fetc%2Fpasswd",
    "%2F..%2Fvictim", "victim%00", "%00", "..%00", "..%252F..%252Fvictim", "VICTIM", ".victim", "a" * 300,
    "%C0%AE%C0%AE%2Fvictim",  # overlong UTF-8 for "."
]  # fmt: skip
# ... and as they appear in a JSON body or a stream's start.
BODY_NAMES = ["..", "../victim", "../../victim", "/etc/passwd", "..\\victim", "victim\x00", "%2e%2e/victim",
              "./victim", "victim/../../victim", "C:\\victim", "\u2025victim", ""]  # fmt: skip


class NeverRenders:
    """A mode whose every use is a failure: these requests must be refused before anything renders."""

    @property
    def capabilities(self) -> Capabilities:
        def session(*_: object) -> Any:
            raise AssertionError("a refused avatar reached the lip-sync session")

        return Capabilities(session=session)

    def render(self, *_: object, **__: object) -> Any:
        raise AssertionError("a refused avatar reached the renderer")


def plant_victims(root: Path) -> list[Path]:
    """A valid-looking avatar and video at every place a `..` could lead to from the stores under `root`."""
    info = {"id": "victim", "name": "v", "kind": "image", "frames": 1, "width": 8, "height": 8, "fps": None,
            "created": 0.0}  # fmt: skip
    planted = []
    for folder in (root, root / "store"):
        (folder / "victim").mkdir(parents=True, exist_ok=True)
        (folder / "victim" / "meta.json").write_text(json.dumps(info))
        (folder / "victim" / "source").write_bytes(b"\x89PNG")
        (folder / "victim.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
        planted += [folder / "victim" / "meta.json", folder / "victim" / "source", folder / "victim.mp4"]
    # The avatar store's parent as an avatar of its own: where the id `..` leads.
    (root / "store" / "meta.json").write_text(json.dumps(info | {"id": ".."}))
    (root / "store" / "source").write_bytes(b"\x89PNG")
    return [*planted, root / "store" / "meta.json", root / "store" / "source"]


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[list[Path]]:
    files = plant_victims(tmp_path)
    contents = {path: path.read_bytes() for path in files}
    yield files
    assert {path: path.read_bytes() for path in files if path.exists()} == contents, "a planted file was changed"
    assert all(path.exists() for path in files), "a planted file was removed"


@pytest.fixture
async def animation(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = AnimationSettings(
        device="cpu", model_cache_dir=tmp_path / "cache", offline=True, face=None,
        avatar_dir=tmp_path / "store" / "avatars", output_dir=tmp_path / "store" / "videos",
    )  # fmt: skip
    app = create_app(settings, backend=NeverRenders())  # type: ignore[arg-type]
    async with serve(app) as client:
        yield app, client


def _refused(response: httpx.Response, where: str) -> None:
    assert 400 <= response.status_code < 500, (where, response.status_code, response.text)
    assert set(response.json()["error"]) >= {"message", "type", "code"}, (where, response.text)


async def test_the_animation_service_refuses_names_outside_its_stores(
    animation: tuple[FastAPI, httpx.AsyncClient], planted: list[Path]
) -> None:
    _, client = animation
    for name in URL_NAMES:
        for method, path in (
            ("GET", f"/v1/avatars/{name}"),
            ("GET", f"/v1/avatars/{name}/image"),
            ("GET", f"/v1/avatars/{name}/image?full=true"),
            ("DELETE", f"/v1/avatars/{name}"),
            ("GET", f"/v1/videos/{name}"),
            ("HEAD", f"/v1/videos/{name}"),
        ):
            response = await client.request(method, path)
            if method == "HEAD":
                assert 400 <= response.status_code < 500, (path, response.status_code)
            else:
                _refused(response, f"{method} {path}")
    speech = base64.b64encode(encode_wav(np.zeros(8000, np.float32), 16_000)).decode()
    for name in BODY_NAMES:
        response = await client.post("/v1/animation", json={"byte_str": speech, "avatar": name})
        _refused(response, f"avatar {name!r}")
        if name:
            assert response.json()["error"]["code"] == "invalid_avatar_id", (name, response.text)


async def test_the_animation_stream_refuses_names_outside_its_store(
    animation: tuple[FastAPI, httpx.AsyncClient], planted: list[Path]
) -> None:
    app, _ = animation
    for name in [n for n in BODY_NAMES if n]:
        with pytest.raises(InvalidRequest) as refused:
            await open_lipsync(base_url="http://animation.in-process", app=app, options={"avatar": name},
                               connect_timeout_s=5)  # fmt: skip
        assert refused.value.code == "invalid_avatar_id", name


async def test_an_uploads_file_name_is_never_a_path(
    animation: tuple[FastAPI, httpx.AsyncClient], planted: list[Path], shared_dir: Path, tmp_path: Path
) -> None:
    _, client = animation
    png = (shared_dir / "assets" / "avatar_astronaut.png").read_bytes()
    before = {p for p in tmp_path.rglob("*") if "store" not in p.relative_to(tmp_path).parts}
    added = await client.post(
        "/v1/avatars", files={"file": ("../../victim.png", png, "image/png")}, data={"name": "../../victim"}
    )
    assert added.status_code == 201, added.text
    avatar = added.json()
    assert avatar["name"] == "../../victim" and avatar["id"] != "victim"  # the name is a label; the id is ours
    assert (tmp_path / "store" / "avatars" / avatar["id"] / "meta.json").is_file()
    after = {p for p in tmp_path.rglob("*") if "store" not in p.relative_to(tmp_path).parts}
    assert after - before == {p for p in after - before if p.is_relative_to(tmp_path / "cache")}


async def test_the_gateway_forwards_no_name_that_leaves_a_store(tmp_path: Path, planted: list[Path]) -> None:
    stack = build_stack(tmp_path / "store")
    (tmp_path / "store").mkdir(exist_ok=True)
    reached: list[str] = []

    @stack.apps["animation"].middleware("http")
    async def record(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        if request.url.path != "/ready":
            reached.append(request.url.path)
        return response

    app = create_gateway(GatewaySettings(live_max_sessions=0), orchestrator=AvatarChatbot(stack.nodes()))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        for name in URL_NAMES:
            for method, path in (
                ("GET", f"/v1/videos/{name}"),
                ("GET", f"/v1/avatars/{name}"),
                ("DELETE", f"/v1/avatars/{name}"),
                ("GET", f"/v1/avatars/{name}/image"),
            ):
                _refused(await client.request(method, path), f"{method} {path}")
        for name in BODY_NAMES:
            live = await client.post("/v1/realtime", params={"avatar": name}, content=b"v=0\r\n",
                                     headers={"Content-Type": "application/sdp"})  # fmt: skip
            assert live.status_code == 400 and live.json()["error"]["param"] == "avatar", (name, live.text)
    assert [path for path in reached if "victim" in path or ".." in path] == []
