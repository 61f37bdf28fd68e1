"""The output store: ids made by the store, partial files, retention, and refusal of foreign ids."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from comps.animation.store import IN_USE_S, STALE_S, OutputStore
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


def aged(store: OutputStore, age_s: float, content: bytes = b"video") -> str:
    """A finished video completed `age_s` seconds before the store's clock, never served (made without pruning)."""
    video_id = finish(OutputStore(root=store.root, retention=100_000), content)
    when = int((store.clock() - age_s) * 1e9)
    os.utime(store.final_path(video_id), ns=(when, when))
    return video_id


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_videos_expire_after_the_ttl(tmp_path: Path) -> None:
    clock = Clock()
    store = OutputStore(root=tmp_path, retention=100, ttl_s=3600, clock=clock)
    old, young = aged(store, 3601), aged(store, 3599)
    assert store.prune() == [old]
    assert store.ids() == [young]
    clock.now += 2
    assert store.prune() == [young]
    unlimited = OutputStore(root=tmp_path, retention=100, ttl_s=0, clock=clock)
    ancient = aged(unlimited, 10 * 365 * 86400)
    assert unlimited.prune() == [] and unlimited.ids() == [ancient]


def test_the_size_cap_removes_the_oldest_counting_partial_files(tmp_path: Path) -> None:
    store = OutputStore(root=tmp_path, retention=100, max_bytes=3000)
    first, second, third = (aged(store, age, b"x" * 1000) for age in (30, 20, 10))
    assert store.ids() == [first, second, third]  # 3000 bytes: at the cap
    _, rendering = store.reserve_live()
    rendering.write_bytes(b"y" * 1500)  # a live render in progress counts, and is never removed
    assert store.prune() == [first, second]
    assert store.ids() == [third] and rendering.exists()


def test_a_commit_prunes_but_never_the_video_it_commits(tmp_path: Path) -> None:
    store = OutputStore(root=tmp_path, retention=100, max_bytes=100)
    old = aged(store, 60, b"x" * 50)
    video_id, partial = store.reserve()
    partial.write_bytes(b"z" * 500)  # alone over the cap
    store.commit(video_id)
    assert store.ids() == [video_id] and not store.final_path(old).exists()


def test_a_video_being_served_is_not_pruned(tmp_path: Path) -> None:
    clock = Clock()
    store = OutputStore(root=tmp_path, retention=1, ttl_s=60, clock=clock)
    served, other, newest = aged(store, 120), aged(store, 110), aged(store, 100)
    with store.open(served) as handle:  # marks it served now (its access time)
        assert store.prune() == [other, newest]  # expired, and beyond the count, but not the one being played
        assert store.ids() == [served]
        assert handle.read() == b"video"
    clock.now += IN_USE_S + 1
    assert store.prune() == [served]


def test_an_open_video_is_read_whole_after_it_is_removed(tmp_path: Path) -> None:
    store = OutputStore(root=tmp_path, retention=5)
    video_id = finish(store, b"a whole video")
    with store.open(video_id) as handle:
        store.delete(video_id)
        assert handle.read() == b"a whole video"
    with pytest.raises(NotFound):
        store.open(video_id)


def test_delete(tmp_path: Path) -> None:
    store = OutputStore(root=tmp_path, retention=5)
    video_id = finish(store)
    store.delete(video_id)
    assert store.ids() == []
    with pytest.raises(NotFound):
        store.delete(video_id)
    with pytest.raises(InvalidRequest) as caught:
        store.delete("../../etc/passwd")
    assert caught.value.status == 400 and caught.value.code == "invalid_video_id"


def test_a_live_video_cannot_be_deleted_while_any_replica_renders_it(tmp_path: Path) -> None:
    store, replica = OutputStore(root=tmp_path, retention=5), OutputStore(root=tmp_path, retention=5)
    video_id, partial = store.reserve_live()
    partial.write_bytes(b"fragments")
    for either in (store, replica):
        with pytest.raises(InvalidRequest) as caught:
            either.delete(video_id)
        assert (caught.value.status, caught.value.code) == (409, "video_in_progress")
    store.commit(video_id)
    replica.delete(video_id)
    assert store.ids() == []


def test_only_a_partial_file_a_live_render_holds_is_served(tmp_path: Path) -> None:
    store = OutputStore(root=tmp_path, retention=5)
    live_id, live = store.reserve_live()
    whole_id, whole = store.reserve()
    whole.write_bytes(b"a whole clip being encoded")  # unplayable before its end: never followed
    replica = OutputStore(root=tmp_path, retention=5)
    assert replica.partial_path(live_id) == live == store.partial_path(live_id)
    assert replica.partial_path(whole_id) is None
    store.discard(live_id)
    assert not live.exists() and replica.partial_path(live_id) is None


def test_after_a_restart_a_leftover_partial_file_is_never_served(tmp_path: Path) -> None:
    crashed = OutputStore(root=tmp_path, retention=5)
    fresh_id, fresh = crashed.reserve_live()
    stale_id, stale = crashed.reserve_live()
    fresh.write_bytes(b"half a video")
    stale.write_bytes(b"half a video")
    for video_id in (fresh_id, stale_id):  # the crash: the kernel releases the process's locks
        crashed._held.pop(video_id).close()
    old = time.time() - STALE_S - 1
    os.utime(stale, (old, old))
    restarted = OutputStore(root=tmp_path, retention=5)
    assert not stale.exists() and fresh.exists()  # the fresh one may be another replica's whole-clip render
    for video_id in (fresh_id, stale_id):
        assert restarted.partial_path(video_id) is None
        with pytest.raises(NotFound):
            restarted.open(video_id)


def test_a_stale_partial_file_a_live_render_still_holds_survives_a_start(tmp_path: Path) -> None:
    store = OutputStore(root=tmp_path, retention=5)
    _, partial = store.reserve_live()  # a render held for long by a reader that does not read
    old = time.time() - STALE_S - 1
    os.utime(partial, (old, old))
    OutputStore(root=tmp_path, retention=5)
    assert partial.exists()


def test_limits_must_not_be_negative(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        OutputStore(root=tmp_path, retention=1, ttl_s=-1)
    with pytest.raises(ValueError, match="max_bytes"):
        OutputStore(root=tmp_path, retention=1, max_bytes=-1)
