"""A live render: speech arrives in pieces, lip-synced frames go out as they are made.

The worker (a thread) pushes speech into a `LipSyncSession`, renders what is ready, and writes frames
and their speech to its output (`LiveOutput`): a `LiveMp4Encoder` whose bytes go to the store's
partial file (readers follow it, see `LiveVideo`) and to the caller (`mp4_file`), or raw I420 frames
to the caller only (`comps.animation.rawframes`). Batching follows the playback clock: batches start
small and double up to `batch` (8 by default: on two cores nearly the throughput of 16 at half the
wait); while less than `ahead_s` of video is made beyond what a viewer who started at the first frame
has seen, every ready frame is rendered (no stall); once ahead, the worker waits for a full batch of
speech. Each batch is flushed the moment it is made (one fMP4 fragment), its last frame included.
A completed render tells its `RenderPace` how fast it made its frames (the time its reader kept it
waiting left out).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import anyio.from_thread
import anyio.to_thread
import numpy as np
import numpy.typing as npt

from comps.animation.fmp4 import LiveMp4Encoder
from comps.animation.pace import RenderPace
from comps.animation.session import LipSyncSession
from comps.animation.store import being_written
from comps.animation.track import Frame

logger = logging.getLogger(__name__)

_END = object()
_POLL_S = 0.05  # how often an idle worker re-checks whether its reader has gone


@dataclass(frozen=True)
class LiveResult:
    """What a finished live render made."""

    frames: int
    fps: float
    duration_s: float
    render_s: float = 0.0  # seconds spent rendering and encoding them (the reader's waits left out)


class LiveOutput(Protocol):
    """Where a live render's frames and speech go, from its worker thread (`LiveMp4Encoder`, `RawFrames`)."""

    def write_audio(self, samples: npt.NDArray[np.float32]) -> None:
        """The next speech samples (16 kHz mono float32), before the frames they play with."""

    def write_frame(self, frame: Frame) -> None:
        """The next frame (BGR uint8, the size `frame_size` gives)."""

    def flush(self) -> None:
        """The end of a batch: everything written so far goes out now."""

    def close(self) -> None:
        """The render is complete (not called when it was stopped)."""


OpenOutput = Callable[[Callable[[bytes], None]], AbstractContextManager[LiveOutput]]
"""Worker thread: `open(emit)` opens a render's output on `emit` (bytes to the reader); leaving it frees it."""


def frame_size(session: LipSyncSession) -> tuple[int, int]:
    """(width, height) of the frames `session` makes: the avatar's, `upscale` times larger with GFPGAN."""
    height, width = session.track.size
    scale = session.renderer.enhancer.upscale if session.enhance and session.renderer.enhancer else 1
    return width * scale, height * scale


class LiveVideo:
    """A video file being written by one worker thread and read, as it grows, by any number of readers."""

    def __init__(self, path: Path) -> None:
        """Follow `path` (the store's partial file; the final one once committed)."""
        self.path = path
        self.final: Path | None = None
        self.size = 0
        self.done = False
        self._changed = anyio.Event()

    def grew(self, size: int) -> None:
        """Worker thread: the file now holds `size` bytes."""
        self.size = size
        anyio.from_thread.run_sync(self._wake)

    def close(self) -> None:
        """Worker thread: the file is complete (and `final` names it once renamed), or abandoned."""
        self.done = True
        anyio.from_thread.run_sync(self._wake)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def chunks(self, block: int = 64 * 1024) -> AsyncIterator[bytes]:
        """The file's bytes from the start, following it until it is complete."""
        try:
            handle = await anyio.open_file(self.path, "rb")
        except FileNotFoundError:  # committed (renamed) meanwhile
            if self.final is None:
                return
            handle = await anyio.open_file(self.final, "rb")
        async with handle:
            sent = 0
            while True:
                changed = self._changed
                if sent < self.size:
                    data = await handle.read(min(block, self.size - sent))
                    sent += len(data)
                    yield data
                elif self.done:
                    return
                else:
                    await changed.wait()


def mp4_file(path: Path, video: LiveVideo, *, width: int, height: int, fps: float) -> OpenOutput:
    """A `LiveMp4Encoder` whose bytes go to `path` (telling `video` as it grows) and then to `emit`."""

    @contextmanager
    def open_output(emit: Callable[[bytes], None]) -> Iterator[LiveOutput]:
        with path.open("wb") as out:

            def sink(data: bytes) -> None:
                out.write(data)
                out.flush()
                video.grew(out.tell())
                emit(data)

            yield LiveMp4Encoder(width=width, height=height, fps=fps, sink=sink)

    return open_output


async def follow_file(path: Path, *, poll_s: float = 0.1, block: int = 64 * 1024) -> AsyncIterator[bytes]:
    """Another replica's live video on the shared store: its partial file's bytes, followed until it is complete.

    The writer is in another process, so there is nothing to wait on but the file: it is read as it
    grows, polling, until it is renamed to its final name (the open handle reads on: same file) or
    removed, or until its writer's lock is gone without either (the writer died): an abandoned render
    ends the stream where it was.
    """
    async with await anyio.open_file(path, "rb") as handle:
        while True:
            data = await handle.read(block)
            if data:
                yield data
            elif not await anyio.Path(path).exists():  # committed or discarded: the handle reads the end
                while data := await handle.read(block):
                    yield data
                return
            elif not await anyio.to_thread.run_sync(being_written, path):
                while data := await handle.read(block):  # what the writer wrote before it died
                    yield data
                return
            else:
                await anyio.sleep(poll_s)


class LiveRender:
    """One live render's worker: blocking `run`, fed through `push`/`end` from any thread."""

    def __init__(
        self,
        session: LipSyncSession,
        *,
        output: OpenOutput,
        first_batch: int = 2,
        batch: int = 8,
        ahead_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        pace: RenderPace | None = None,
    ) -> None:
        """Render `session` into the output `output` opens (`mp4_file`, `rawframes.raw_frames`).

        A completed render reports its frames and rendering seconds to `pace`.
        """
        self.session = session
        self.output = output
        self.first_batch = first_batch
        # bf16 Wav2Lip on 2 AMX cores: 54 frames/s at batch 4, 61 at 8, 64 at 16 (bench, network alone):
        # 8 keeps nearly all the throughput at half the wait for each batch.
        self.batch = min(batch, session.renderer.batch_size)
        self.ahead_s = ahead_s
        self.clock = clock
        self._inbox: queue.Queue[object] = queue.Queue()  # speech arrays, then _END
        self._first_frame_at: float | None = None
        self._audio_written = 0
        self.pace = pace
        self._busy_s = 0.0  # seconds spent rendering and encoding batches, the reader's waits left out
        self._waited_s = 0.0  # seconds `emit` blocked on the reader
        self.result: LiveResult | None = None  # set when `run` has made the whole video

    def push(self, samples: npt.NDArray[np.float32]) -> None:
        """More speech (16 kHz mono float32); never blocks."""
        self._inbox.put(samples)

    def end(self) -> None:
        """No more speech will come."""
        self._inbox.put(_END)

    def run(self, emit: Callable[[bytes], None], stopped: threading.Event) -> LiveResult:
        """Worker: render and write until the speech has ended and every frame is out, or until `stopped`.

        `emit` hands each piece of output to the reader and blocks while the reader is behind
        (`produce_in_thread`), so a reader that does not read holds the render.
        """

        def timed_emit(data: bytes) -> None:
            started = self.clock()
            emit(data)
            self._waited_s += self.clock() - started

        with self.output(timed_emit) as output:
            rendered = True
            while not stopped.is_set():
                self._take(wait=not rendered)
                if self.session.finished and self.session.ready() == 0:
                    break
                rendered = self._render(output)
            if stopped.is_set():
                return LiveResult(frames=self.session.rendered, fps=self.session.fps, duration_s=0.0)
            output.write_audio(self._speech(self.session.samples))  # the speech's tail past the last frame
            output.close()
        frames = self.session.rendered
        if self.pace is not None:
            self.pace.observe(frames, self._busy_s)
        self.result = LiveResult(
            frames=frames, fps=self.session.fps, duration_s=frames / self.session.fps, render_s=self._busy_s
        )
        return self.result

    def _take(self, *, wait: bool) -> None:
        """Move the speech that has arrived into the session; with `wait`, wait up to the poll interval for some."""
        try:
            item = self._inbox.get(timeout=_POLL_S) if wait else self._inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            if item is _END:
                self.session.finish()
            else:
                assert isinstance(item, np.ndarray)
                self.session.push(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _render(self, output: LiveOutput) -> bool:
        """One batch, small while close to the playback clock, the efficient one once ahead; False if none."""
        session = self.session
        ready = session.ready()
        if ready == 0:
            return False
        ahead = session.rendered / session.fps - self._played_s()
        if ahead >= self.ahead_s and ready < self.batch and not session.finished:
            return False  # far enough ahead: wait for a full batch of speech
        started, waited = self.clock(), self._waited_s
        # Batches start at `first_batch` and double up to `batch` (2, 4, 8): the first frame out fast, and
        # while the video made is still short, each batch no longer than what is already out plays for.
        frames = session.render(max(self.first_batch, min(self.batch, 2 * session.rendered)))
        # All the speech there is goes in before the frames: the AAC encoder works in 64 ms blocks with
        # look-ahead, and a player plays only where both tracks are buffered.
        output.write_audio(self._speech(session.samples))
        for frame in frames:
            if self._first_frame_at is None:
                self._first_frame_at = self.clock()
            output.write_frame(frame)
        output.flush()  # the whole batch goes out now, its last frame included
        self._busy_s += self.clock() - started - (self._waited_s - waited)
        return True

    def _played_s(self) -> float:
        return 0.0 if self._first_frame_at is None else self.clock() - self._first_frame_at

    def _speech(self, until: int) -> npt.NDArray[np.float32]:
        """The speech samples not yet written, up to sample `until`."""
        start = self._audio_written
        self._audio_written = max(start, until)
        return self.session.speech(start, self._audio_written)
