"""The live avatar's two outgoing WebRTC tracks, stamped from one clock: a 25 fps video and its speech.

Both tracks read one `Timeline` of slots: slot `n` is video frame `n` at `n / fps` seconds and the
`16000 / fps` speech samples that play with it. Whichever track reaches a slot first decides it
(the next answer frame with its speech if one is queued, else the idle picture and silence) and
the other reads the same decision, so a frame and its speech can never drift apart: the audio
track's 20 ms frames are the halves of the slots. Each track starts at pts 0 and is paced by the
wall clock from the moment the first of them is read; a track that falls more than `MAX_LAG`
slots behind (a slow encoder) skips ahead instead of playing late.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack

SAMPLE_RATE = 16_000
AUDIO_FRAME = 320  # samples per 20 ms audio frame (WebRTC's packetization)
VIDEO_CLOCK = 90_000  # RTP's video clock rate
MAX_LAG = 5  # slots a track may fall behind the wall clock before it skips ahead

I420 = npt.NDArray[np.uint8]  # (height * 3 / 2, width): planar Y, then U, then V
Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True)
class Slot:
    """What plays during one video frame: the picture and its speech."""

    frame: I420
    audio: Pcm
    speaking: bool


class Timeline:
    """The answer frames waiting to be played, and the decided slots both tracks read.

    Between answers every slot is the idle picture with silence. While an answer is being made
    (`begin_answer` .. `end_answer`), a slot whose frame is not ready yet holds the last frame with
    silence (a stall, counted), so the picture never jumps back to idle mid-answer.

    Args:
        idle: the picture shown while the avatar is not speaking (I420).
        fps: video frames per second; `SAMPLE_RATE / fps` must be a whole number of 20 ms halves.
        capacity: answer frames queued at most; `put` waits beyond (back-pressure to the renderer).
        on_slot: called with each newly decided slot (the live session follows speaking/listening with it).
    """

    def __init__(
        self, idle: I420, *, fps: float = 25.0, capacity: int = 50, on_slot: Callable[[int, Slot], None] | None = None
    ) -> None:
        per_slot = SAMPLE_RATE / fps
        if per_slot != int(per_slot) or int(per_slot) % AUDIO_FRAME:
            raise ValueError(f"{fps} fps does not divide into 20 ms audio frames at {SAMPLE_RATE} Hz")
        self.fps = fps
        self.samples_per_slot = int(per_slot)
        self.capacity = capacity
        self.on_slot = on_slot
        self._silence = np.zeros(self.samples_per_slot, np.int16)
        self._idle = Slot(idle, self._silence, speaking=False)
        self._queue: deque[Slot] = deque()
        self._decided: dict[int, Slot] = {}
        self._room = asyncio.Event()
        self._room.set()
        self.started_at: float | None = None  # monotonic time of slot 0
        self.played = 0  # answer frames played since the last `clear`
        self.stalls = 0  # slots of this answer that found no frame ready (its last frame held)
        self.total_stalls = 0  # the same over every answer
        self._answering = False
        self._held = False
        self._last: Slot | None = None

    @property
    def queued(self) -> int:
        """Answer frames waiting to play."""
        return len(self._queue)

    def set_idle(self, idle: I420) -> None:
        """Show another picture between answers."""
        self._idle = Slot(idle, self._silence, speaking=False)

    async def put(self, frame: I420, audio: Pcm) -> None:
        """Queue an answer frame and its speech; waits while the queue is full.

        The speech decides how many slots the frame fills: `samples_per_slot` for one, twice that for a
        frame rendered at half the rate (shown twice, each time with its own half of the speech).
        """
        while len(self._queue) >= self.capacity:
            self._room.clear()
            await self._room.wait()
        slots = max(1, -(-audio.size // self.samples_per_slot))
        if audio.size < slots * self.samples_per_slot:
            audio = np.concatenate([audio, np.zeros(slots * self.samples_per_slot - audio.size, np.int16)])
        for part in audio.reshape(slots, self.samples_per_slot):
            self._queue.append(Slot(frame, part, speaking=True))

    def clear(self) -> int:
        """Drop every queued answer frame (barge-in); the next slots are idle. Returns how many were dropped."""
        dropped = len(self._queue)
        self._queue.clear()
        self._room.set()
        self.played = 0
        self._answering = self._held = False
        self._last = None
        return dropped

    def clock(self) -> float:
        """The monotonic time of slot 0, fixed by the first track that asks."""
        if self.started_at is None:
            self.started_at = time.monotonic()
        return self.started_at

    def begin_answer(self, *, held: bool = False) -> None:
        """An answer is being made: from its first frame on, a late frame holds the last one (a stall), not idle.

        A `held` answer (made before the turn surely ended) queues its frames but none plays until `release`.
        """
        self.clear()
        self._answering = True
        self._held = held
        self.stalls = 0

    def release(self) -> None:
        """A held answer may play."""
        self._held = False

    def end_answer(self) -> None:
        """Every frame of the answer is queued: once they have played, the avatar is idle again."""
        self._answering = False

    def slot(self, index: int) -> Slot:
        """Slot `index`, decided once: the next queued answer frame, else the last one held, else the idle picture."""
        decided = self._decided.get(index)
        if decided is not None:
            return decided
        if self._held:
            decided = self._idle
        elif self._queue:
            decided = self._last = self._queue.popleft()
            self.played += 1
            if len(self._queue) < self.capacity:
                self._room.set()
        elif self._answering and self._last is not None:
            decided = Slot(self._last.frame, self._silence, speaking=True)
            self.stalls += 1
            self.total_stalls += 1
        else:
            decided = self._idle
        self._decided[index] = decided
        for old in [key for key in self._decided if key < index - 4 * MAX_LAG]:
            del self._decided[old]  # both tracks are past it (or skipped it)
        if self.on_slot is not None:
            self.on_slot(index, decided)
        return decided


class RenderRate:
    """The rate live answers are rendered at: `fps`, or half of it once the renderer has shown it cannot keep up.

    After each answer played to its end, `observe` its stalls: more than `tolerance` of its slots held
    means this machine renders slower than real time (Wav2Lip in fp32 on two AVX2 cores makes ~15
    frames/s), and the next answers render every other frame, each shown twice with its own speech; 3
    answers in a row without a stall at half rate try the full rate again.
    """

    def __init__(self, fps: float, *, adaptive: bool, tolerance: float = 0.05) -> None:
        self.full = fps
        self.fps = fps
        self.adaptive = adaptive
        self.tolerance = tolerance
        self._smooth = 0  # answers in a row without a stall at half rate

    def observe(self, *, stalls: int, played: int) -> None:
        """An answer played `played` slots with frames and waited `stalls` slots for late ones."""
        if not self.adaptive or played + stalls == 0:
            return
        if stalls > self.tolerance * (played + stalls):
            self.fps, self._smooth = self.full / 2, 0
        elif self.fps < self.full:
            self._smooth += stalls == 0
            if self._smooth >= 3:
                self.fps, self._smooth = self.full, 0


class _PacedTrack(MediaStreamTrack):
    """A track whose `n`-th item is due `n * period` seconds after the timeline's clock started."""

    def __init__(self, timeline: Timeline, *, period: float, per_slot: int) -> None:
        super().__init__()
        self.timeline = timeline
        self.period = period
        self.per_slot = per_slot  # items per slot
        self.sent = 0  # items out; an item's pts counts them

    async def _due(self) -> int:
        """Wait until the next item is due; its index (skipping to the due one when more than MAX_LAG slots late)."""
        start = self.timeline.clock()
        due = int((time.monotonic() - start) / self.period)
        if due - self.sent > MAX_LAG * self.per_slot:
            self.sent = due
        wait = start + self.sent * self.period - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        index = self.sent
        self.sent += 1
        return index


class AvatarVideo(_PacedTrack):
    """The avatar's video track: one frame per slot."""

    kind = "video"

    def __init__(self, timeline: Timeline) -> None:
        super().__init__(timeline, period=1.0 / timeline.fps, per_slot=1)
        self._ticks = round(VIDEO_CLOCK / timeline.fps)

    async def recv(self) -> av.VideoFrame:
        index = await self._due()
        slot = self.timeline.slot(index)
        frame = av.VideoFrame.from_ndarray(slot.frame, format="yuv420p")
        frame.pts = index * self._ticks
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        return frame


class AnswerAudio(_PacedTrack):
    """The avatar's speech track: 20 ms frames of 16 kHz mono PCM, each half of a slot (at 25 fps)."""

    kind = "audio"

    def __init__(self, timeline: Timeline) -> None:
        super().__init__(
            timeline, period=AUDIO_FRAME / SAMPLE_RATE, per_slot=timeline.samples_per_slot // AUDIO_FRAME
        )

    async def recv(self) -> av.AudioFrame:
        index = await self._due()
        slot = self.timeline.slot(index // self.per_slot)
        offset = (index % self.per_slot) * AUDIO_FRAME
        pcm = slot.audio[offset : offset + AUDIO_FRAME]
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = index * AUDIO_FRAME
        frame.time_base = Fraction(1, SAMPLE_RATE)
        return frame


def i420_from_image(data: bytes, *, width: int, height: int) -> I420:
    """An encoded picture (PNG, JPEG) scaled to `width` x `height` (even) as I420."""
    with av.open(io.BytesIO(data), mode="r") as container:
        picture = next(container.decode(video=0))
    return np.ascontiguousarray(picture.reformat(width=width, height=height, format="yuv420p").to_ndarray())


def i420_from_bytes(data: bytes, *, width: int, height: int) -> I420:
    """One raw I420 frame as the animation service sends it."""
    expected = width * height * 3 // 2
    if len(data) != expected:
        raise ValueError(f"an I420 frame of {width}x{height} is {expected} bytes, got {len(data)}")
    return np.frombuffer(data, np.uint8).reshape(height * 3 // 2, width)
