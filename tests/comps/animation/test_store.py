"""The output store: ids made by the store, partial files, retention, and refusal of foreign ids."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from comps.animation.store import STALE_S, OutputStore
from comps.core.errors import InvalidRequest, NotFound


def finish(store: OutputStore, content: bytes = b"video") -> str:
    video_id, partial = store.reserve()
    partial.write_bytes(content)
    store.commit(video_id)
    return video_id


def test_reserve_commit_and_path(tmp_path: Path) -> None:
    store = OutputStore(root=tmp_path / "out", retention=5)
    video_id, partial = store.reserve()
    assert partial.parent == tmp_path / "out" and partial.name.endswith(".mp4")
    partial.write_bytes(b"mp4")
    with pytest.raises(NotFound):  # not visible until committed
        store.path(video_id)
    assert store.commit(video_id) == store.path(video_id) == tmp_path / "out" / f"{video_id}.mp4"
    assert store.ids() == [video_id]


def test_retention_removes_the_oldest(tmp_path: Path) -> None:
    store = OutputStore(root=tmp_path, retention=2)
    ids = []
    for age in range(4):
        ids.append(finish(store))
        os.utime(store.path(ids[-1]), ns=(age * 10**9, age * 10**9))  # distinct, increasing mtimes
    assert store.ids() == ids[-2:]
    with pytest.raises(NotFound, match="retention"):
        store.path(ids[0])


def test_discard_and_stale_partials(tmp_path: Path) -> None:
    store = OutputStore(root=tmp_path, retention=2)
    video_id, partial = store.reserve()
    partial.write_bytes(b"half")
    store.discard(video_id)
    assert not partial.exists()
    _, crashed = store.reserve()
    crashed.write_bytes(b"half")
    _, rendering = store.reserve()
    rendering.write_bytes(b"being written")
    stale = time.time() - STALE_S - 1
    os.utime(crashed, (stale, stale))
    OutputStore(root=tmp_path, retention=2)  # a restart (or another replica's start) cleans up
    assert not crashed.exists()
    assert rendering.exists()  # written to recently: another replica's render on the shared store


@pytest.mark.parametrize("bad", ["../secret", "x" * 32, "ABCDEF0123456789ABCDEF0123456789", "", "a/b"])
def test_foreign_ids_are_refused(tmp_path: Path, bad: str) -> None:
    (tmp_path / "secret.mp4").write_bytes(b"no")
    store = OutputStore(root=tmp_path / "out", retention=2)
    with pytest.raises(InvalidRequest):
        store.path(bad)


def test_retention_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retention"):
        OutputStore(root=tmp_path, retention=0)
