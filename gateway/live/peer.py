"""One live session: the person's microphone in, the avatar's video and speech out, turn-taking and barge-in.

The microphone's audio (48 kHz Opus from the browser, decoded by aiortc) is resampled to 16 kHz and
fed to the turn detector (Silero VAD) in a worker thread. When a turn ends, its speech is answered
by the `Conversation` into the `Timeline` both outgoing tracks read. The answer starts early, at
a short pause (`TurnPaused`): its events and frames are held until the pause turns out to be the
turn's end (`TurnEnded`), and it is dropped silently if the person speaks on. When the person
starts speaking while an answer is in flight or still playing, the answer is cancelled (LLM, TTS
and the lip-sync stream stop), its queued frames and speech are dropped, and the avatar listens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.to_thread
import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from comps.core.errors import InternalError, ServiceError
from comps.core.vad import SpeechResumed, SpeechStarted, TurnDetector, TurnEvent, TurnPaused
from gateway.live.events import (
    AnswerDelta,
    Closed,
    Error,
    EventChannel,
    Interrupted,
    LiveEvent,
    LiveState,
    State,
    Transcript,
)
from gateway.live.media import SAMPLE_RATE, Pcm, RenderRate, Slot, Timeline, i420_from_bytes
from megaservice.conversation import Conversation
from megaservice.progress import Heard, Progress, Wrote

logger = logging.getLogger(__name__)


class TimelineSink:
    """The conversation's frames (raw I420 from the lip-sync stream) into the timeline."""

    def __init__(self, timeline: Timeline, *, width: int, height: int) -> None:
        self.timeline = timeline
        self.width = width
        self.height = height

    async def put(self, frame: bytes, audio: Pcm) -> None:
        await self.timeline.put(i420_from_bytes(frame, width=self.width, height=self.height), audio)


@dataclass(eq=False)
class _Answer:
    """One answer: its work's cancel scope; `confirmed` once its turn surely ended; its events held until then."""

    scope: anyio.CancelScope
    confirmed: bool
    held: list[LiveEvent] = field(default_factory=list)
    finished: bool = False  # its work is done (every frame queued, or it failed)


class LivePeer:
    """The state of one WebRTC session and the tasks that run it (see the module docstring).

    Args:
        pc: the peer connection (its remote description already set, our tracks added).
        timeline: what the outgoing tracks play.
        detector: this session's turn detector.
        make_conversation: builds the conversation with its sink and reporter.
        idle_timeout_s: the session ends after this long with nobody speaking and nothing playing.
        connect_timeout_s: the session ends if its media have not connected this long after the answer.
        render_rate: the rate answers are rendered at (shared by the gateway's sessions, see `RenderRate`).
    """

    def __init__(
        self,
        *,
        pc: RTCPeerConnection,
        timeline: Timeline,
        detector: TurnDetector,
        make_conversation: Callable[[TimelineSink, Callable[[Progress], None]], Conversation],
        frame_size: tuple[int, int],
        idle_timeout_s: float,
        connect_timeout_s: float,
        render_rate: RenderRate,
    ) -> None:
        self.pc = pc
        self.timeline = timeline
        self.detector = detector
        self.events = EventChannel()
        width, height = frame_size
        self.conversation = make_conversation(TimelineSink(timeline, width=width, height=height), self._progress)
        self.idle_timeout_s = idle_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.render_rate = render_rate
        self.state: LiveState = "listening"
        self.microphone: MediaStreamTrack | None = None
        self.turns = 0  # turns answered or begun
        self.interruptions = 0
        self._answer: _Answer | None = None  # the answer being made (or still playing its last frames)
        self._speaking = False
        self._last_activity = time.monotonic()
        self._closed = anyio.Event()
        self._connected = anyio.Event()
        self._heard_microphone = anyio.Event()
        timeline.on_slot = self._on_slot

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and self.microphone is None:
                self.microphone = track
                self._heard_microphone.set()

        @pc.on("datachannel")
        def on_datachannel(channel: object) -> None:
            self.events.attach(channel)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected":
                self._connected.set()
            if pc.connectionState in ("failed", "closed"):
                self._closed.set()

    @property
    def answering(self) -> bool:
        """An answer is being made or is still playing."""
        confirmed = self._answer is not None and self._answer.confirmed
        return confirmed or self.timeline.queued > 0 or self._speaking

    async def run(self, on_end: Callable[[], Awaitable[None]]) -> None:
        """The session's life: listen and answer until the connection closes or stays idle too long."""
        self._set_state("listening")
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._listen, group)
                group.start_soon(self._watch_idle)
                await self._closed.wait()
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.pc.close()
                await on_end()

    def close(self, reason: str | None = None) -> None:
        """End the session (the server's side); `reason` is told to the client first."""
        if reason in ("idle_timeout", "shutdown"):
            self.events.send(Closed(reason=reason))  # type: ignore[arg-type]
        self._closed.set()

    async def _listen(self, group: anyio.abc.TaskGroup) -> None:
        await self._heard_microphone.wait()  # aiortc reports the remote track as the connection comes up
        assert self.microphone is not None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        try:
            while True:
                frame = await self.microphone.recv()
                assert isinstance(frame, av.AudioFrame)
                for out in resampler.resample(frame):
                    samples = np.asarray(out.to_ndarray(), np.float32).reshape(-1)
                    for event in await anyio.to_thread.run_sync(self.detector.push, samples):
                        self._on_turn_event(event, group)
        except MediaStreamError:  # the microphone's track ended: the connection is closing
            self._closed.set()

    def _on_turn_event(self, event: TurnEvent, group: anyio.abc.TaskGroup) -> None:
        self._last_activity = time.monotonic()
        if isinstance(event, SpeechStarted):
            if self.answering:
                self._barge_in()
        elif isinstance(event, TurnPaused):
            self._start(event.audio, confirmed=False, group=group)
        elif isinstance(event, SpeechResumed):
            self._drop_tentative()
        elif self._answer is not None and not self._answer.confirmed:
            self._confirm(self._answer)  # the pause was the turn's end: the answer is already on its way
        else:
            self._start(event.audio, confirmed=True, group=group)

    def _start(self, speech: npt.NDArray[np.float32], *, confirmed: bool, group: anyio.abc.TaskGroup) -> None:
        answer = _Answer(anyio.CancelScope(), confirmed=confirmed)
        self._answer = answer
        self.conversation.fps = self.render_rate.fps
        self.timeline.begin_answer(held=not confirmed)  # counts this answer's frames from 0
        if confirmed:
            self.turns += 1
            self._set_state("thinking")
        group.start_soon(self._run, answer, speech)

    def _confirm(self, answer: _Answer) -> None:
        """The turn did end at the pause: what the answer made so far goes out, and it may play."""
        answer.confirmed = True
        self.turns += 1
        self._set_state("thinking")
        for event in answer.held:
            self.events.send(event)
        answer.held.clear()
        self.timeline.release()
        if answer.finished:
            self._settle(answer)

    def _drop_tentative(self) -> None:
        """The person spoke on after a pause: the answer begun on it is void, silently."""
        answer = self._answer
        if answer is None or answer.confirmed:
            return
        answer.scope.cancel()
        self._answer = None
        self.timeline.clear()
        self.conversation.retract()

    def _barge_in(self) -> None:
        """Stop the answer now: cancel its work, drop what is queued, keep what was spoken, listen."""
        if self._answer is not None:
            self._answer.scope.cancel()
            self._answer = None
        played_s = self.timeline.played / self.timeline.fps
        self.timeline.clear()
        self._speaking = False
        self.interruptions += 1
        self.events.send(Interrupted(spoken=self.conversation.interrupt(played_s)))
        self._set_state("listening")

    async def _run(self, answer: _Answer, speech: npt.NDArray[np.float32]) -> None:
        with answer.scope:
            try:
                await self.conversation.turn(speech)
            except ServiceError as exc:
                logger.info("live turn failed: %s", exc)
                self._tell(answer, Error.of(exc))
            except Exception as exc:
                logger.exception("live turn failed")
                self._tell(answer, Error.of(InternalError(f"the answer failed: {type(exc).__name__}")))
        answer.finished = True
        if answer.confirmed:
            self._settle(answer)

    def _settle(self, answer: _Answer) -> None:
        """A confirmed answer's work is done: once its frames have played, the avatar listens."""
        if self._answer is not answer:
            return  # cut by barge-in meanwhile
        self._answer = None
        self.timeline.end_answer()
        if not self._speaking and self.timeline.queued == 0:
            self._set_state("listening")

    def _tell(self, answer: _Answer | None, event: LiveEvent) -> None:
        """Send an answer's event, or keep it while the answer is tentative."""
        if answer is not None and not answer.confirmed:
            answer.held.append(event)
        else:
            self.events.send(event)

    async def _watch_idle(self) -> None:
        with anyio.move_on_after(self.connect_timeout_s):
            await self._connected.wait()
        if not self._connected.is_set():
            logger.info("live session: the media never connected; closing it")
            self._closed.set()
            return
        while True:
            await anyio.sleep(min(1.0, self.idle_timeout_s / 4))
            if self.answering or self.detector.speaking:
                self._last_activity = time.monotonic()
            elif time.monotonic() - self._last_activity > self.idle_timeout_s:
                self.close("idle_timeout")
                return

    def _on_slot(self, index: int, slot: Slot) -> None:
        """A track decided slot `index`: follow speaking and listening."""
        if slot.speaking != self._speaking:
            self._speaking = slot.speaking
            self._set_state("speaking" if slot.speaking else "listening")
            if not slot.speaking:  # an answer played to its end
                self.render_rate.observe(stalls=self.timeline.stalls, played=self.timeline.played)

    def _progress(self, fact: Progress) -> None:
        if isinstance(fact, Heard):
            self._tell(self._answer, Transcript(text=fact.transcript))
        elif isinstance(fact, Wrote):
            self._tell(self._answer, AnswerDelta(delta=fact.delta))

    def _set_state(self, state: LiveState) -> None:
        if state != self.state or state == "listening":
            self.state = state
            self.events.send(State(state=state))
