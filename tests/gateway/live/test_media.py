"""The live tracks read one timeline: a frame and its speech are decided together and stamped from one clock."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest

from gateway.live.media import AUDIO_FRAME, AnswerAudio, AvatarVideo, Slot, Timeline, i420_from_bytes, i420_from_image

W, H = 64, 48


def picture(value: int) -> np.ndarray:
    return np.full((H * 3 // 2, W), value, np.uint8)


def speech(value: int) -> np.ndarray:
    return np.full(640, value, np.int16)


@pytest.mark.anyio
async def test_each_slot_is_decided_once_for_both_tracks() -> None:
    seen: list[tuple[int, bool]] = []
    timeline = Timeline(picture(0), on_slot=lambda i, slot: seen.append((i, slot.speaking)))
    await timeline.put(picture(1), speech(1))
    await timeline.put(picture(2), speech(2))
    assert timeline.slot(0).frame[0, 0] == 1
    assert timeline.slot(0).frame[0, 0] == 1  # read again: the same decision, not the next frame
    assert timeline.slot(1).audio[0] == 2
    assert timeline.slot(2).speaking is False and timeline.slot(2).frame[0, 0] == 0  # nothing queued: idle
    assert seen == [(0, True), (1, True), (2, False)]
    assert timeline.played == 2


@pytest.mark.anyio
async def test_a_late_frame_mid_answer_holds_the_last_one_with_silence() -> None:
    timeline = Timeline(picture(0))
    timeline.begin_answer()
    assert timeline.slot(0).speaking is False  # thinking: nothing spoken yet, the idle picture
    await timeline.put(picture(5), speech(5))
    assert timeline.slot(1).frame[0, 0] == 5
    held = timeline.slot(2)
    assert held.speaking and held.frame[0, 0] == 5 and not held.audio.any()
    assert timeline.stalls == 1
    timeline.end_answer()
    assert timeline.slot(3).speaking is False  # the answer is over: idle again


@pytest.mark.anyio
async def test_clear_drops_the_queue_and_frees_a_waiting_producer() -> None:
    timeline = Timeline(picture(0), capacity=2)
    await timeline.put(picture(1), speech(1))
    await timeline.put(picture(2), speech(2))
    third = asyncio.ensure_future(timeline.put(picture(3), speech(3)))
    await asyncio.sleep(0.05)
    assert not third.done()  # full: back-pressure
    timeline.slot(0)
    await asyncio.wait_for(third, 1)  # a slot played: room for one more
    assert timeline.clear() == 2 and timeline.queued == 0
    assert timeline.slot(1).speaking is False


@pytest.mark.anyio
async def test_short_speech_is_padded_to_the_slot() -> None:
    timeline = Timeline(picture(0))
    await timeline.put(picture(1), np.ones(100, np.int16))
    slot = timeline.slot(0)
    assert slot.audio.size == 640 and slot.audio[:100].all() and not slot.audio[100:].any()


@pytest.mark.anyio
async def test_video_and_audio_carry_each_slot_at_the_same_media_time() -> None:
    timeline = Timeline(picture(0))
    for value in range(1, 7):
        await timeline.put(picture(value), speech(value))
    video, audio = AvatarVideo(timeline), AnswerAudio(timeline)
    frames = [await video.recv() for _ in range(6)]
    sounds = [await audio.recv() for _ in range(12)]
    for frame in frames:
        assert isinstance(frame, av.VideoFrame)
        at = float(frame.pts * frame.time_base)
        value = int(frame.to_ndarray(format="yuv420p")[0, 0])
        halves = [s for s in sounds if abs(float(s.pts * s.time_base) - at) < 1e-9 or
                  abs(float(s.pts * s.time_base) - at - 0.02) < 1e-9]  # fmt: skip
        assert len(halves) == 2
        assert all(int(h.to_ndarray()[0, 0]) == value for h in halves)
        assert all(h.samples == AUDIO_FRAME and h.sample_rate == 16_000 for h in halves)
    assert float(frames[0].pts * frames[0].time_base) == 0.0 and float(sounds[0].pts * sounds[0].time_base) == 0.0


@pytest.mark.anyio
async def test_tracks_are_paced_by_the_wall_clock() -> None:
    timeline = Timeline(picture(0))
    video = AvatarVideo(timeline)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(6):
        await video.recv()
    assert loop.time() - start >= 5 / 25 - 0.01  # frame 5 is due 200 ms after frame 0


def test_a_slow_reader_skips_ahead_instead_of_playing_late() -> None:
    async def run() -> int:
        timeline = Timeline(picture(0))
        video = AvatarVideo(timeline)
        await video.recv()
        assert timeline.started_at is not None
        timeline.started_at -= 1.0  # a second late
        frame = await video.recv()
        return int(frame.pts) // 3600

    assert asyncio.run(run()) >= 24


def test_raw_frames_and_pictures_become_i420() -> None:
    data = bytes(range(256)) * (W * H * 3 // 2 // 256) + bytes((W * H * 3 // 2) % 256)
    assert i420_from_bytes(data, width=W, height=H).shape == (H * 3 // 2, W)
    with pytest.raises(ValueError, match="bytes"):
        i420_from_bytes(data[:-1], width=W, height=H)
    png = av.VideoFrame.from_ndarray(np.full((10, 20, 3), 200, np.uint8), format="rgb24")
    encoded = _png(png)
    assert i420_from_image(encoded, width=W, height=H).shape == (H * 3 // 2, W)


def test_an_fps_that_does_not_split_into_20_ms_audio_frames_is_refused() -> None:
    with pytest.raises(ValueError, match="20 ms"):
        Timeline(picture(0), fps=30.0)
    assert isinstance(Slot(picture(0), speech(0), speaking=False), Slot)


def _png(frame: av.VideoFrame) -> bytes:
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = frame.width, frame.height, "rgb24"
    return b"".join(bytes(p) for p in codec.encode(frame))


@pytest.mark.anyio
async def test_a_held_answer_queues_but_plays_only_once_released() -> None:
    timeline = Timeline(picture(0))
    timeline.begin_answer(held=True)
    await timeline.put(picture(7), speech(7))
    assert timeline.slot(0).speaking is False and timeline.queued == 1
    timeline.release()
    assert timeline.slot(1).frame[0, 0] == 7


@pytest.mark.anyio
async def test_a_frame_rendered_at_half_rate_fills_two_slots_each_with_its_own_speech() -> None:
    timeline = Timeline(picture(0))
    await timeline.put(picture(3), np.concatenate([speech(1), speech(2)]))
    first, second = timeline.slot(0), timeline.slot(1)
    assert first.frame[0, 0] == second.frame[0, 0] == 3
    assert first.audio[0] == 1 and second.audio[0] == 2 and timeline.played == 2


def test_the_render_rate_halves_after_an_answer_that_stalled_and_comes_back_after_three_smooth_ones() -> None:
    from gateway.live.media import RenderRate

    rate = RenderRate(25.0, adaptive=True)
    rate.observe(stalls=2, played=100)  # 2 %: within tolerance
    assert rate.fps == 25.0
    rate.observe(stalls=30, played=100)
    assert rate.fps == 12.5
    for _ in range(2):
        rate.observe(stalls=0, played=100)
    assert rate.fps == 12.5
    rate.observe(stalls=0, played=100)
    assert rate.fps == 25.0
    fixed = RenderRate(25.0, adaptive=False)
    fixed.observe(stalls=100, played=1)
    assert fixed.fps == 25.0
