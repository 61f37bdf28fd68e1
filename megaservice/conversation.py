"""A live conversation's turns: one spoken question at a time answered as lip-synced frames, with memory.

Each turn runs the real-time graph (asr -> llm tokens -> clause chunks -> tts) and sends the speech
to one lip-sync stream in frames mode: every rendered frame comes back with the speech that plays
with it and goes to a `FrameSink` (the live session's timeline), which waits while it is full, so
the render follows playback. Earlier turns go to the LLM as history, the oldest dropped first past
`history_chars`. A turn cut by barge-in keeps in the history what was spoken of it, as far as the
frames played (`interrupt`).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.to_thread
import numpy as np
import numpy.typing as npt

from comps.core.audio import encode_wav
from comps.core.concurrency import UNBOUNDED, task_group
from comps.core.contracts import AsrRequest, TtsRequest, TtsResponse
from comps.core.errors import InvalidRequest
from megaservice.avatarchatbot import AvatarChatbot, AvatarParameters
from megaservice.chat import ChatMessage
from megaservice.lipsync import LipSyncStream, open_lipsync
from megaservice.progress import Heard, Progress, ProgressObserver, ProgressTracker, Wrote
from megaservice.realtime import SAMPLE_RATE, speech_samples
from megaservice.records import NodeEvent

logger = logging.getLogger(__name__)


class FrameSink(Protocol):
    """Where a turn's frames go, each with its speech; `put` waits while the sink is full."""

    async def put(self, frame: bytes, audio: npt.NDArray[np.int16]) -> None: ...


@dataclass
class _Said:
    """What one answer said: its chunks as spoken, each with the speech samples it covers."""

    question: str = ""
    text: list[str] = field(default_factory=list)  # the LLM's deltas, as shown
    chunks: list[tuple[str, int, int]] = field(default_factory=list)  # (text, first sample, end sample)
    committed: bool = False
    began: float = field(default_factory=time.perf_counter)
    marks: dict[str, float] = field(default_factory=dict)  # seconds from `began` to: heard, text, speech, frame

    def mark(self, what: str) -> None:
        """Note when `what` first happened."""
        self.marks.setdefault(what, round(time.perf_counter() - self.began, 3))

    def spoken(self, samples: int) -> str:
        """The words of the chunks heard in the first `samples` speech samples (a chunk cut part-way by its share)."""
        words: list[str] = []
        for text, start, end in self.chunks:
            if samples >= end:
                words += text.split()
            elif samples > start:
                parts = text.split()
                words += parts[: round(len(parts) * (samples - start) / (end - start))]
        return " ".join(words)


class Conversation:
    """One live session's dialogue with the avatar.

    Args:
        chatbot: the megaservice whose `spoken` graph and animation node answer each turn.
        params: the session's parameters (voice, avatar, sampling, system prompt); `history` is managed here.
        sink: where the frames and their speech go.
        report: told of what was heard and each delta of the answer, synchronously.
        fps: the frame rate asked of the lip-sync stream.
        history_chars: earlier messages kept for the LLM, counted in characters (oldest dropped first).
    """

    def __init__(
        self,
        chatbot: AvatarChatbot,
        *,
        params: AvatarParameters,
        sink: FrameSink,
        report: ProgressObserver,
        fps: float = 25.0,
        history_chars: int = 6000,
        lipsync_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.chatbot = chatbot
        self.params = params
        self.sink = sink
        self.report = report
        self.fps = fps
        self.history_chars = history_chars
        self.lipsync_options = dict(lipsync_options or {})
        self.history: list[ChatMessage] = []
        self._said = _Said(committed=True)

    async def turn(self, speech: npt.NDArray[np.float32]) -> None:
        """Answer one spoken turn (16 kHz mono); returns once every frame is in the sink. Cancel it to barge in.

        A turn in which ASR hears no words ends quietly (a cough is not a question).
        """
        wav = await anyio.to_thread.run_sync(encode_wav, speech, SAMPLE_RATE)
        said = self._said = _Said()
        params = dataclasses.replace(self.params, history=tuple(self.history))
        options = {**self.lipsync_options, "frames": True, "fps": self.fps}
        animation = self.chatbot.nodes["animation"]
        lipsync = await open_lipsync(
            base_url=animation.base_url, app=animation.app, options=options,
            connect_timeout_s=self.chatbot.connect_timeout_s, headers=animation.headers, timeout_s=animation.timeout_s,
        )  # fmt: skip
        try:
            await self._answer(lipsync, AsrRequest(audio=base64.b64encode(wav).decode(), language=params.language),
                               params, said)  # fmt: skip
        except InvalidRequest as exc:
            if exc.code != "no_speech":
                raise
            return
        finally:
            await lipsync.aclose()
        self._commit(said, said.spoken(said.chunks[-1][2] if said.chunks else 0))
        said.mark("done")
        logger.info("live turn: %s s after its start", ", ".join(f"{k} {v:.2f}" for k, v in said.marks.items()))

    def retract(self) -> None:
        """The turn just answered was not a turn after all (the person spoke on): forget it."""
        said, self._said = self._said, _Said(committed=True)
        asked = [ChatMessage(role="user", content=said.question)]
        if said.committed and said.question and self.history[-2:-1] == asked:
            del self.history[-2:]

    @property
    def timings(self) -> dict[str, float]:
        """Seconds from the start of the latest turn to what it has done: heard, text, speech, frame, done."""
        return dict(self._said.marks)

    def interrupt(self, played_s: float) -> str:
        """The turn in flight (or still playing) was cut after `played_s` seconds of it: keep what was spoken of it."""
        said = self._said
        spoken = said.spoken(round(played_s * SAMPLE_RATE))
        if said.committed and self.history and self.history[-1].role == "assistant":
            self.history[-1] = ChatMessage(role="assistant", content=spoken)
        elif said.question:
            self._commit(said, spoken)
        return spoken

    async def _answer(
        self, lipsync: LipSyncStream, inputs: AsrRequest, params: AvatarParameters, said: _Said
    ) -> None:
        tracker = ProgressTracker(self._heard(said))
        chunks, chunks_in = anyio.create_memory_object_stream[tuple[str, TtsResponse]](UNBOUNDED)
        speech = _Speech()

        def watch(event: NodeEvent) -> None:
            tracker(event)
            if event.node == "tts" and event.kind == "item":
                assert isinstance(event.request, TtsRequest) and isinstance(event.value, TtsResponse)
                chunks.send_nowait((event.request.text, event.value))  # in answer order

        async def answer() -> None:
            async with chunks:
                await self.chatbot.spoken.schedule(inputs, params, observer=watch)

        async def relay() -> None:
            async with chunks_in:
                async for text, tts in chunks_in:
                    samples = await anyio.to_thread.run_sync(speech_samples, tts)
                    said.mark("speech")
                    said.chunks.append((text, speech.size, speech.size + samples.size))
                    speech.append(samples)
                    await lipsync.speak(samples)
            await lipsync.send_end()

        async def frames() -> None:
            per_frame = round(SAMPLE_RATE / self.fps)
            index = 0
            while isinstance(message := await lipsync.receive(), bytes):
                said.mark("frame")
                await self.sink.put(message, speech.pcm16(index * per_frame, (index + 1) * per_frame))
                index += 1

        async with task_group() as group:
            group.start_soon(answer)
            group.start_soon(relay)
            group.start_soon(frames)

    def _heard(self, said: _Said) -> ProgressObserver:
        def report(fact: Progress) -> None:
            if isinstance(fact, Heard):
                said.question = fact.transcript
                said.mark("heard")
            elif isinstance(fact, Wrote):
                said.text.append(fact.delta)
                said.mark("text")
            self.report(fact)

        return report

    def _commit(self, said: _Said, spoken: str) -> None:
        said.committed = True
        if not said.question:
            return
        self.history += [ChatMessage(role="user", content=said.question), ChatMessage(role="assistant", content=spoken)]
        while len(self.history) > 2 and sum(len(m.content) for m in self.history) > self.history_chars:
            del self.history[:2]


class _Speech:
    """The answer's speech so far (16 kHz float32), grown by doubling."""

    def __init__(self) -> None:
        self._data = np.zeros(SAMPLE_RATE, np.float32)
        self.size = 0

    def append(self, samples: npt.NDArray[np.float32]) -> None:
        end = self.size + samples.size
        if end > self._data.size:
            grown = np.zeros(max(end, 2 * self._data.size), np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : end] = samples
        self.size = end

    def pcm16(self, start: int, end: int) -> npt.NDArray[np.int16]:
        """Samples `start .. end` as PCM16 (zeros past the speech's end)."""
        out = np.zeros(end - start, np.int16)
        piece = self._data[start : min(end, self.size)]
        out[: piece.size] = np.round(np.clip(piece, -1.0, 1.0) * 32767.0).astype(np.int16)
        return out

