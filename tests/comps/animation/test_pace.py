"""The rate a stream that names none renders at: full, or half where this process renders too slowly."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from support.avatar_media import astronaut
from support.wav2lip_weights import deterministic_wav2lip

from comps.animation.detect import HaarDetector, build_track
from comps.animation.live import LiveOutput, LiveRender
from comps.animation.pace import RenderPace
from comps.animation.render import Wav2LipRenderer
from comps.animation.session import LipSyncSession
from comps.animation.track import Frame
from comps.core.device import resolve_device

SR = 16_000


def test_unmeasured_the_full_rate() -> None:
    assert RenderPace().rate(25.0, "auto") == 25.0


@pytest.mark.parametrize(("frames_per_s", "expected"), [(29.9, 12.5), (30.0, 25.0), (80.0, 25.0), (12.0, 12.5)])
def test_auto_halves_the_rate_under_the_margin(frames_per_s: float, expected: float) -> None:
    pace = RenderPace(margin=1.2)
    pace.observe(round(frames_per_s * 10), 10.0)
    assert pace.rate(25.0, "auto") == expected


def test_the_setting_fixes_the_rate_whatever_was_measured() -> None:
    slow, fast = RenderPace(), RenderPace()
    slow.observe(10, 1.0)
    fast.observe(100, 1.0)
    assert (slow.rate(25.0, "full"), fast.rate(25.0, "half"), fast.rate(30.0, "half")) == (25.0, 12.5, 15.0)


def test_the_pace_is_a_moving_average_and_ignores_empty_renders() -> None:
    pace = RenderPace(weight=0.5)
    pace.observe(0, 1.0)
    pace.observe(10, 0.0)
    assert pace.frames_per_s is None
    pace.observe(40, 1.0)
    pace.observe(20, 1.0)
    assert pace.frames_per_s == 30.0  # half the new 20, half the earlier 40
    pace.observe(10, 1.0)
    assert pace.rate(25.0, "auto") == 12.5  # 20 frames/s now: below 1.2 x 25


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def timed_output(clock: Clock, *, frame_s: float) -> Callable[..., object]:
    """An output whose frames each take `frame_s` to encode; each batch goes to the reader at `flush`."""

    class Output:
        def __init__(self, emit: Callable[[bytes], None]) -> None:
            self.emit = emit

        def write_audio(self, samples: np.ndarray) -> None:
            pass

        def write_frame(self, frame: Frame) -> None:
            clock.now += frame_s

        def flush(self) -> None:
            self.emit(b"batch")

        def close(self) -> None:
            pass

    @contextmanager
    def open_output(emit: Callable[[bytes], None]) -> Iterator[LiveOutput]:
        yield Output(emit)

    return open_output


@pytest.mark.parametrize(("frame_s", "expected"), [(0.1, 10.0), (0.0, None)])
def test_a_render_reports_its_frames_over_its_rendering_time_not_the_readers(
    shared_dir: Path, frame_s: float, expected: float | None
) -> None:
    renderer = Wav2LipRenderer(model=deterministic_wav2lip(), device=resolve_device("cpu"), batch_size=8)
    track = build_track([astronaut(shared_dir)], HaarDetector(), fps=None)
    session = LipSyncSession(renderer, track, fps=25.0)
    clock, pace = Clock(), RenderPace()
    render = LiveRender(session, output=timed_output(clock, frame_s=frame_s), clock=clock, pace=pace)
    render.push(np.zeros(SR // 2, np.float32))
    render.end()

    def slow_reader(data: bytes) -> None:
        clock.now += 5.0  # the render waits 5 s for its reader to take each batch

    result = render.run(slow_reader, threading.Event())
    assert result.frames == 13
    assert clock.now >= 5.0 * 3  # three batches (2, 4, 7), each read slowly: none of it counted
    assert pace.frames_per_s == (None if expected is None else pytest.approx(expected))
