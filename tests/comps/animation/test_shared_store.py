"""Two animation replicas on one media store: what one registers or renders, the other uses and serves.

Each replica is a whole app with its own registry, store and in-memory caches (what separate
processes would have); only the avatar and video folders are shared, as a ReadWriteMany volume is.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import anyio
import httpx
import numpy as np
import pytest
from support.animation_http import envelope, serve
from support.models import speak
from support.servers import Served
from support.wav2lip_weights import write_checkpoint

from comps.animation.app import create_app
from comps.animation.live import follow_file
from comps.animation.settings import AnimationSettings
from comps.animation.store import OutputStore
from comps.core.audio import encode_wav

SR = 16_000
pytestmark = pytest.mark.anyio


def replica(store: Path, checkpoints: Path) -> AnimationSettings:
    return AnimationSettings(
        device="cpu",
        checkpoint_dir=checkpoints,
        model_cache_dir=store / "cache",
        offline=True,
        avatar_dir=store / "avatars",
        output_dir=store / "videos",
        fps=10.0,
        batch_size=8,
    )


async def test_an_avatar_and_a_video_made_by_one_replica_are_used_and_served_by_the_other(
    tmp_path: Path, shared_dir: Path
) -> None:
    checkpoints = tmp_path / "checkpoints"
    write_checkpoint(checkpoints / "wav2lip.pth")
    store = tmp_path / "store"
    png = (shared_dir / "assets" / "avatar_astronaut.png").read_bytes()
    speech = base64.b64encode(encode_wav(speak("Two replicas, one store."), SR)).decode()
    async with serve(create_app(replica(store, checkpoints))) as a, serve(create_app(replica(store, checkpoints))) as b:
        created = (await a.post("/v1/avatars", files={"file": ("astro.png", png, "image/png")})).json()
        assert created["id"] in [avatar["id"] for avatar in (await b.get("/v1/avatars")).json()["avatars"]]
        assert (await b.get(f"/v1/avatars/{created['id']}")).json() == created  # B started before A registered it

        rendered = await b.post("/v1/animation", json={"byte_str": speech, "avatar": created["id"]})
        assert rendered.status_code == 200, rendered.text
        video_id = rendered.json()["id"]
        whole = await a.get(f"/v1/videos/{video_id}")  # rendered by B, served by A
        assert whole.status_code == 200 and whole.content[4:8] == b"ftyp"
        part = await a.get(f"/v1/videos/{video_id}", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == whole.content[100:200]

        assert (await a.delete(f"/v1/avatars/{created['id']}")).status_code == 204
        envelope(await b.get(f"/v1/avatars/{created['id']}"), 404)  # B's cached track does not outlive it
        envelope(await b.post("/v1/animation", json={"byte_str": speech, "avatar": created["id"]}), 404)


@pytest.mark.parametrize("ending", ["commit", "crash"])
async def test_another_replicas_live_video_is_followed_until_it_is_committed_or_its_writer_dies(
    tmp_path: Path, ending: str
) -> None:
    other = OutputStore(root=tmp_path, retention=5)  # the other replica's store, on the shared folder
    video_id, partial = other.reserve_live()
    pieces = [np.random.default_rng(i).bytes(50_000) for i in range(5)]

    def writer() -> None:  # the other replica: appends as it renders, then commits by renaming (or dies)
        with partial.open("ab") as out:
            for piece in pieces:
                time.sleep(0.05)
                out.write(piece)
                out.flush()
        if ending == "commit":
            other.commit(video_id)
        else:
            other._held.pop(video_id).close()  # the kernel releases a dead process's lock; the file stays

    thread = threading.Thread(target=writer)
    thread.start()
    with anyio.fail_after(30):
        received = b"".join([chunk async for chunk in follow_file(partial, poll_s=0.01)])
    thread.join()
    assert received == b"".join(pieces)
    assert received == (other.final_path(video_id) if ending == "commit" else partial).read_bytes()


async def test_a_replica_serves_another_replicas_live_video_and_never_a_leftover(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    write_checkpoint(checkpoints / "wav2lip.pth")
    store = tmp_path / "store"
    settings = replica(store, checkpoints)
    other = OutputStore(root=settings.output_dir, retention=5)
    live_id, live = other.reserve_live()
    live.write_bytes(b"fragments so far")
    leftover_id, leftover = other.reserve_live()
    leftover.write_bytes(b"half a video")
    other._held.pop(leftover_id).close()  # its writer died
    # Over a socket: httpx's in-process transport hands out a response only once it is complete, and
    # this one completes only after the client has read its first part.
    with Served(create_app(settings)) as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=60, trust_env=False) as a:
            with anyio.fail_after(60):
                async with a.stream("GET", f"/v1/videos/{live_id}") as followed:
                    assert followed.status_code == 200 and followed.headers["cache-control"] == "no-store"
                    chunks = followed.aiter_bytes()
                    assert await chunks.__anext__() == b"fragments so far"
                    with live.open("ab") as out:
                        out.write(b" and the end")
                    other.commit(live_id)
                    assert b"".join([chunk async for chunk in chunks]) == b" and the end"
            envelope(await a.get(f"/v1/videos/{leftover_id}"), 404)
            envelope(await a.delete(f"/v1/videos/{leftover_id}"), 404)
    assert leftover.exists()  # it may be a whole-clip render: only a start removes stale ones
