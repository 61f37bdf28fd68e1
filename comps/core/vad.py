"""Voice-activity detection (Silero VAD v6 on onnxruntime) and end-of-turn detection for live 16 kHz speech."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from comps.core.embedded import package_folder
from comps.core.weights import WeightsMissingError

Samples = npt.NDArray[np.float32]

SAMPLE_RATE = 16_000
CHUNK = 512  # samples per model call at 16 kHz (32 ms), the window Silero was trained on
_CONTEXT = 64  # samples of the previous chunk that v5/v6 prepend to each chunk (faster_whisper/vad.py does the same)
_STATE_SHAPE = (1, 1, 128)  # the LSTM's `h` and `c`
_MODEL_FILE = "assets/silero_vad_v6.onnx"
_NEG_OFFSET = 0.15  # silence is below threshold - 0.15, as in Silero's VADIterator
_TAIL = SAMPLE_RATE // 10  # trailing silence kept after a turn's last speech chunk: 100 ms


class _Session(Protocol):
    """The part of `onnxruntime.InferenceSession` we use."""

    def run(self, output_names: None, input_feed: dict[str, Samples]) -> list[Samples]: ...


class SileroVad:
    """Streaming Silero VAD v6: speech probability of successive 32 ms chunks, keeping the recurrent state.

    The model (inputs `input` (n, 64 + 512), `h` and `c` (1, 1, 128); outputs `speech_probs` (n,), `hn`, `cn`)
    is the copy shipped inside the faster-whisper wheel. One instance per audio stream (`fresh` makes another).
    """

    CHUNK = CHUNK
    SAMPLE_RATE = SAMPLE_RATE

    def __init__(self, session: _Session) -> None:
        """Wrap an open onnxruntime session of the Silero v6 model; prefer `SileroVad.load`."""
        self._session = session
        self.reset()

    @classmethod
    def load(cls, path: Path | None = None, *, threads: int = 1) -> SileroVad:
        """Open the model (blocking, ~60 ms); `path` defaults to the copy inside the faster-whisper package.

        Raises:
            WeightsMissingError: the file is not there (the message names it and the pip command).
        """
        if path is None:
            folder = package_folder("faster_whisper")
            path = folder / _MODEL_FILE if folder is not None else Path("faster_whisper") / _MODEL_FILE
        if not path.is_file():
            command = "pip install faster-whisper"
            raise WeightsMissingError(
                f"Silero VAD model {str(path)!r} not found; it ships with the faster-whisper package "
                f"(faster_whisper/{_MODEL_FILE}): `{command}`",
                what="silero_vad_v6.onnx",
                searched=(path,),
                command=command,
            )
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return cls(onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"]))

    def fresh(self) -> SileroVad:
        """Another stream's VAD on the same loaded model (an onnxruntime session runs calls from many threads)."""
        return type(self)(self._session)

    def reset(self) -> None:
        """Forget the stream: zero the recurrent state and the context."""
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)

    def probability(self, chunk: npt.ArrayLike) -> float:
        """Speech probability (0..1) of the next `CHUNK` mono float32 samples at 16 kHz (blocking, ~0.13 ms, 1 thread).

        Raises:
            ValueError: `chunk` is not 512 samples.
        """
        samples = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if samples.shape[0] != CHUNK:
            raise ValueError(f"a VAD chunk is {CHUNK} samples at {SAMPLE_RATE} Hz, got {samples.shape[0]}")
        window = np.concatenate([self._context, samples])[np.newaxis]
        probs, self._h, self._c = self._session.run(None, {"input": window, "h": self._h, "c": self._c})
        self._context = samples[-_CONTEXT:].copy()
        return float(probs.reshape(-1)[0])


@dataclass(frozen=True)
class SpeechStarted:
    """The person started speaking; `at_s` is the stream clock (seconds of audio processed) when detected."""

    at_s: float


@dataclass(frozen=True, eq=False)
class TurnEnded:
    """The person finished a turn (compared by identity: it holds an array).

    Attributes:
        audio: mono float32 at 16 kHz, from `pre_roll_ms` before the speech onset to ~100 ms after its end.
        at_s: the stream clock (seconds of audio processed) when detected.
        speech_s: seconds from the onset to the end of the last speech chunk (no pre-roll, no trailing silence).
    """

    audio: Samples
    at_s: float
    speech_s: float


@dataclass(frozen=True, eq=False)
class TurnPaused:
    """The person paused `eager_ms` inside a turn: the turn so far, for work that may start before it surely ended.

    Either `SpeechResumed` follows (the turn goes on: that work is void) or `TurnEnded` with the same audio.
    """

    audio: Samples
    at_s: float


@dataclass(frozen=True)
class SpeechResumed:
    """Speech again after a `TurnPaused`: the same turn goes on."""

    at_s: float


TurnEvent: TypeAlias = SpeechStarted | TurnPaused | SpeechResumed | TurnEnded


def _chunks(ms: float) -> int:
    return max(1, math.ceil(ms * SAMPLE_RATE / 1000 / CHUNK))


class TurnDetector:
    """Turns a live 16 kHz stream into SpeechStarted / TurnEnded events, on the stream's clock.

    A chunk is speech at probability >= `threshold`; once speaking, it stays speech down to `threshold - 0.15`
    (Silero's hysteresis). Durations are rounded up to whole 32 ms chunks, and each event fires at the end
    of the chunk that decides it, so `at_s` does not depend on how the audio was split into `push` calls.

    Latency, on the stream clock: `SpeechStarted` fires `min_speech_ms` after the first speech chunk starts,
    so min_speech_ms plus up to one chunk after the onset, plus the model's own onset lag (on Piper speech
    0-50 ms, ~90 ms on a soft 'th'). `TurnEnded` fires `silence_ms` (600 -> 608 ms) after the last speech chunk
    ends, so silence_ms plus up to one chunk after the speech end, plus the model's end lag (-10..+50 ms); or
    once the turn reaches `max_turn_s` from its first speech chunk, and the speech still going on starts a new turn.
    """

    def __init__(
        self,
        vad: SileroVad,
        *,
        threshold: float = 0.5,
        silence_ms: float = 600,
        min_speech_ms: float = 96,
        pre_roll_ms: float = 200,
        max_turn_s: float = 30.0,
        eager_ms: float | None = None,
    ) -> None:
        """Detect turns with `vad`, which the detector owns from now on (it resets it).

        With `eager_ms` (shorter than `silence_ms`), a pause of that long inside a turn is a `TurnPaused`.
        """
        self._vad = vad
        self._threshold = threshold
        self._silence_chunks = _chunks(silence_ms)
        self._min_speech_chunks = _chunks(min_speech_ms)
        self._pre_roll = int(pre_roll_ms * SAMPLE_RATE / 1000)
        self._pre_roll_chunks = math.ceil(self._pre_roll / CHUNK)
        self._max_turn_chunks = _chunks(max_turn_s * 1000)
        self._eager_chunks = _chunks(eager_ms) if eager_ms else None
        if self._eager_chunks is not None and self._eager_chunks >= self._silence_chunks:
            raise ValueError(f"eager_ms ({eager_ms}) must be shorter than silence_ms ({silence_ms})")
        self.reset()

    @property
    def speaking(self) -> bool:
        """Whether a turn is under way: SpeechStarted was sent and TurnEnded not yet."""
        return self._started

    def reset(self) -> None:
        """Start a new stream: forget buffered audio, the VAD's state and the clock."""
        self._vad.reset()
        self._pending = np.zeros(0, dtype=np.float32)  # < CHUNK samples waiting for the rest of their chunk
        self._processed = 0  # samples fed to the VAD: the stream clock
        self._kept: list[Samples] = []  # chunks: the pre-roll history, then the turn from its onset on
        self._onset: int | None = None  # index in _kept of the turn's first speech chunk
        self._last_speech = 0  # index in _kept of the turn's latest speech chunk
        self._triggered = False  # the hysteresis state: was the last chunk speech
        self._started = False
        self._silence = 0  # silence chunks since the last speech chunk
        self._paused = False  # TurnPaused sent for the current pause

    def push(self, samples: npt.ArrayLike) -> list[TurnEvent]:
        """Feed mono float32 samples at 16 kHz, any length; return the events they complete (blocking).

        Raises:
            ValueError: `samples` is not one-dimensional.
        """
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"push takes mono samples (one dimension), got shape {audio.shape}")
        buffered = np.concatenate([self._pending, audio])
        whole = buffered.shape[0] - buffered.shape[0] % CHUNK
        self._pending = buffered[whole:].copy()
        events: list[TurnEvent] = []
        for start in range(0, whole, CHUNK):
            event = self._step(buffered[start : start + CHUNK].copy())
            if event is not None:
                events.append(event)
        return events

    def _step(self, chunk: Samples) -> TurnEvent | None:
        probability = self._vad.probability(chunk)
        self._processed += CHUNK
        self._kept.append(chunk)
        index = len(self._kept) - 1
        floor = self._threshold - _NEG_OFFSET if self._triggered else self._threshold
        self._triggered = probability >= floor
        if self._triggered:
            if self._onset is None:
                self._onset = index
            self._last_speech, self._silence = index, 0
            if self._paused:
                self._paused = False
                return SpeechResumed(at_s=self._now())
        elif self._started:
            self._silence += 1
            if self._silence >= self._silence_chunks:
                return self._end(forced=False)
            if self._silence == self._eager_chunks:
                self._paused = True
                return TurnPaused(audio=self._turn_audio(), at_s=self._now())
        else:  # silence before the turn was confirmed: a blip, forget it
            self._onset = None
            self._keep_last(self._pre_roll_chunks)
        if self._onset is None:
            return None
        if not self._started and index - self._onset + 1 >= self._min_speech_chunks:
            self._started = True
            return SpeechStarted(at_s=self._now())
        if self._started and index - self._onset + 1 >= self._max_turn_chunks:
            return self._end(forced=True)
        return None

    def _turn_audio(self) -> Samples:
        """The turn so far: from `pre_roll` before its onset to ~100 ms after its last speech chunk."""
        assert self._onset is not None
        audio = np.concatenate(self._kept)
        start = max(0, self._onset * CHUNK - self._pre_roll)
        stop = min(audio.shape[0], (self._last_speech + 1) * CHUNK + _TAIL)
        return audio[start:stop].copy()

    def _end(self, *, forced: bool) -> TurnEnded:
        assert self._onset is not None
        speech_s = (self._last_speech + 1 - self._onset) * CHUNK / SAMPLE_RATE
        event = TurnEnded(audio=self._turn_audio(), at_s=self._now(), speech_s=speech_s)
        # After a cut the speech goes on: keep no pre-roll, or the next turn would repeat this one's end.
        self._keep_last(0 if forced else self._pre_roll_chunks)
        self._onset, self._started, self._silence, self._paused = None, False, 0, False
        return event

    def _keep_last(self, chunks: int) -> None:
        self._kept = self._kept[max(0, len(self._kept) - chunks) :]

    def _now(self) -> float:
        return self._processed / SAMPLE_RATE
