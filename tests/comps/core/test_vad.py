"""Silero VAD and turn detection on real Piper speech, with the real ONNX model (no mocks)."""

from __future__ import annotations

import functools
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from support.models import speak, whisper_tiny_dir, word_error_rate

from comps.core.vad import CHUNK, SAMPLE_RATE, SileroVad, SpeechStarted, TurnDetector, TurnEnded, TurnEvent
from comps.core.weights import WeightsMissingError

Samples = npt.NDArray[np.float32]
CHUNK_S = CHUNK / SAMPLE_RATE
HELLO = "Hello there, how are you doing today?"
PIZZA = "I would like to order a large pizza with mushrooms."
# Piper's voice varies between syntheses; this sentence's crisp onset and end keep the model's own lag small
# (30 syntheses x 6 alignments: onset noticed <= 45 ms late, end -6..+38 ms), so the timing windows below hold.
WEATHER = "What is the weather like in Paris this weekend?"


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad.load()


@functools.cache
def utterance(text: str) -> Samples:
    """Piper speech cut to its audible part (Piper adds ~60 ms before and ~250 ms of silence after)."""
    audio = speak(text)
    loud = np.nonzero(np.abs(audio) > 0.002 * np.abs(audio).max())[0]  # -54 dB: the last breath of the word
    return audio[loud[0] : loud[-1] + 1].copy()


def silence(seconds: float) -> Samples:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def stream(*parts: Samples) -> tuple[Samples, list[tuple[float, float]]]:
    """Concatenate silences and utterances; also return each utterance's (onset, end) in seconds."""
    spans, position = [], 0
    for part in parts:
        if part.any():
            spans.append((position / SAMPLE_RATE, (position + part.shape[0]) / SAMPLE_RATE))
        position += part.shape[0]
    return np.concatenate(parts), spans


def push_in_pieces(detector: TurnDetector, audio: Samples, sizes: tuple[int, ...]) -> list[TurnEvent]:
    events, start = [], 0
    for size in itertools.cycle(sizes):
        if start >= audio.shape[0]:
            return events
        events += detector.push(audio[start : start + size])
        start += size
    raise AssertionError("unreachable")


def ended(events: list[TurnEvent]) -> list[TurnEnded]:
    return [event for event in events if isinstance(event, TurnEnded)]


def test_probability_high_in_speech_low_in_silence_and_noise(vad: SileroVad) -> None:
    audio, [(onset, end)] = stream(silence(0.5), utterance(PIZZA), silence(0.5))
    vad.reset()
    probs = np.array([vad.probability(chunk) for chunk in audio[: audio.size - audio.size % CHUNK].reshape(-1, CHUNK)])
    times = np.arange(probs.size) * CHUNK_S
    assert probs[times + CHUNK_S <= onset].max() < 0.1
    in_speech = probs[(times >= onset) & (times + CHUNK_S <= end)]
    assert np.median(in_speech) > 0.9 and np.mean(in_speech > 0.5) > 0.85
    assert probs[times >= end + 0.2].max() < 0.1

    vad.reset()
    noise = np.random.default_rng(0).normal(0.0, 0.01, 60 * CHUNK).astype(np.float32)  # -40 dBFS hiss
    assert max(vad.probability(chunk) for chunk in noise.reshape(-1, CHUNK)) < 0.2


def test_streaming_matches_faster_whisper_batched_model(vad: SileroVad) -> None:
    from faster_whisper.vad import get_vad_model

    audio, _ = stream(silence(0.3), utterance(HELLO), silence(0.4))
    audio = np.pad(audio, (0, -audio.size % CHUNK))
    vad.reset()
    ours = [vad.probability(chunk) for chunk in audio.reshape(-1, CHUNK)]
    np.testing.assert_allclose(ours, get_vad_model()(audio), atol=1e-5)
    vad.reset()
    assert vad.probability(audio[:CHUNK]) == pytest.approx(ours[0], abs=1e-6)


def test_probability_takes_exactly_one_chunk(vad: SileroVad) -> None:
    with pytest.raises(ValueError, match="512"):
        vad.probability(np.zeros(CHUNK - 1, dtype=np.float32))


@pytest.mark.parametrize("lead_s", [0.5, 0.517, 0.5299])
def test_one_utterance_is_one_turn(vad: SileroVad, lead_s: float) -> None:
    audio, [(onset, end)] = stream(silence(lead_s), utterance(WEATHER), silence(1.5))
    detector = TurnDetector(vad, silence_ms=600, pre_roll_ms=200)

    events = detector.push(audio[: round((onset + 0.5) * SAMPLE_RATE)])
    assert [type(event) for event in events] == [SpeechStarted] and detector.speaking
    events += detector.push(audio[round((onset + 0.5) * SAMPLE_RATE) :])
    assert [type(event) for event in events] == [SpeechStarted, TurnEnded] and not detector.speaking

    turn = ended(events)[0]
    # One chunk of slack below: the model may call the last faint milliseconds of a word (-54 dB) silence.
    assert end + 0.6 - CHUNK_S <= turn.at_s <= end + 0.6 + 2 * CHUNK_S
    assert end - onset - 2 * CHUNK_S <= turn.speech_s <= end - onset + 2 * CHUNK_S
    # The turn is a slice of the stream holding the whole utterance, ~200 ms before it, ~100 ms after it.
    lead = int(np.nonzero(turn.audio)[0][0])
    start = round(onset * SAMPLE_RATE) - lead
    np.testing.assert_array_equal(turn.audio, audio[start : start + turn.audio.size])
    assert 0.2 - 2 * CHUNK_S <= lead / SAMPLE_RATE <= 0.2 + CHUNK_S
    assert 0.1 - CHUNK_S <= turn.audio.size / SAMPLE_RATE - lead / SAMPLE_RATE - (end - onset) <= 0.1 + 2 * CHUNK_S


def test_events_land_on_the_chunks_the_model_decides(vad: SileroVad) -> None:
    audio, _ = stream(silence(0.4), utterance(HELLO), silence(1.2))
    vad.reset()
    probs = [vad.probability(chunk) for chunk in audio[: audio.size - audio.size % CHUNK].reshape(-1, CHUNK)]
    speech, triggered = [], False
    for prob in probs:  # Silero's hysteresis, as TurnDetector documents it
        triggered = prob >= (0.35 if triggered else 0.5)
        speech.append(triggered)
    first = speech.index(True)
    last = len(speech) - 1 - speech[::-1].index(True)
    assert all(speech[first : first + 3])  # a real onset, not a blip

    started, turn = TurnDetector(vad, min_speech_ms=96, silence_ms=600).push(audio)
    assert isinstance(started, SpeechStarted) and isinstance(turn, TurnEnded)
    assert started.at_s == pytest.approx((first + 3) * CHUNK_S)  # 96 ms = 3 chunks
    assert turn.at_s == pytest.approx((last + 1 + 19) * CHUNK_S)  # 600 ms rounds up to 19 chunks
    assert turn.speech_s == pytest.approx((last + 1 - first) * CHUNK_S)


@pytest.mark.parametrize(("pause_s", "turns"), [(0.3, 1), (1.2, 2)])
def test_a_pause_shorter_than_silence_ms_keeps_the_turn(vad: SileroVad, pause_s: float, turns: int) -> None:
    audio, spans = stream(silence(0.4), utterance(HELLO), silence(pause_s), utterance(PIZZA), silence(1.0))
    events = TurnDetector(vad, silence_ms=600).push(audio)
    assert [type(event) for event in events] == [SpeechStarted, TurnEnded] * turns
    assert ended(events)[-1].at_s >= spans[-1][1] + 0.6
    if turns == 1:
        assert ended(events)[0].speech_s >= spans[1][1] - spans[0][0] - CHUNK_S


@pytest.mark.parametrize("sizes", [(100, 777, 4000), (1,) * 3 + (511, 513), (CHUNK,)])
def test_piece_sizes_do_not_change_the_events(vad: SileroVad, sizes: tuple[int, ...]) -> None:
    audio, _ = stream(silence(0.3), utterance(HELLO), silence(1.0), utterance(PIZZA), silence(0.8))
    whole = TurnDetector(vad).push(audio)
    pieces = push_in_pieces(TurnDetector(vad), audio, sizes)
    assert [type(event) for event in pieces] == [type(event) for event in whole]
    assert [event.at_s for event in pieces] == [event.at_s for event in whole]
    for a, b in zip(ended(pieces), ended(whole), strict=True):
        assert a.speech_s == b.speech_s
        np.testing.assert_array_equal(a.audio, b.audio)


@pytest.mark.parametrize("min_speech_ms", [96, 250])
@pytest.mark.parametrize("lead_s", [0.3, 0.3101, 0.3212])
def test_speech_started_latency_on_the_stream_clock(vad: SileroVad, min_speech_ms: int, lead_s: float) -> None:
    audio, [(onset, _)] = stream(silence(lead_s), utterance(WEATHER), silence(0.2))
    started = TurnDetector(vad, min_speech_ms=min_speech_ms).push(audio)[0]
    assert isinstance(started, SpeechStarted)
    latency = started.at_s - onset
    assert min_speech_ms / 1000 - CHUNK_S <= latency <= min_speech_ms / 1000 + 2 * CHUNK_S


def test_a_blip_shorter_than_min_speech_is_no_turn(vad: SileroVad) -> None:
    blip = utterance(HELLO)[: int(0.05 * SAMPLE_RATE)]
    audio, _ = stream(silence(0.5), blip, silence(1.0))
    assert TurnDetector(vad, min_speech_ms=250).push(audio) == []


def test_max_turn_cuts_a_long_turn(vad: SileroVad) -> None:
    talk = [part for text in (WEATHER, PIZZA, HELLO) for part in (utterance(text), silence(0.2))]
    audio, spans = stream(silence(0.3), *talk, silence(1.0))
    events = TurnDetector(vad, max_turn_s=2.0).push(audio)
    kinds = [type(event) for event in events]
    assert kinds[:2] == [SpeechStarted, TurnEnded] and len(ended(events)) >= 3
    assert kinds == [SpeechStarted, TurnEnded] * (len(kinds) // 2)
    first = ended(events)[0]
    assert spans[0][0] + 2.0 - CHUNK_S <= first.at_s <= spans[0][0] + 2.0 + 2 * CHUNK_S
    assert first.speech_s <= 2.0 + CHUNK_S and first.audio.size / SAMPLE_RATE <= 2.0 + 0.2 + 0.1 + CHUNK_S
    assert ended(events)[-1].at_s >= spans[-1][1] + 0.6  # the last turn still ends on silence


def test_reset_starts_a_new_stream(vad: SileroVad) -> None:
    audio, _ = stream(silence(0.3), utterance(HELLO), silence(1.0))
    detector = TurnDetector(vad)
    detector.push(audio[: audio.size // 2])
    assert detector.speaking
    detector.reset()
    assert not detector.speaking
    again = detector.push(audio)
    fresh = TurnDetector(vad).push(audio)
    assert [(type(e), e.at_s) for e in again] == [(type(e), e.at_s) for e in fresh]


def test_push_takes_mono_samples(vad: SileroVad) -> None:
    with pytest.raises(ValueError, match="mono"):
        TurnDetector(vad).push(np.zeros((2, CHUNK), dtype=np.float32))


def test_a_missing_model_file_names_it_and_the_package(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError, match=r"nope\.onnx.*faster-whisper.*pip install faster-whisper"):
        SileroVad.load(tmp_path / "nope.onnx")


def test_import_is_cheap() -> None:
    probe = "import sys, comps.core.vad; print(sorted({'onnxruntime', 'faster_whisper'} & set(sys.modules)))"
    repo = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=repo)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_turn_audio_transcribes_to_the_words(vad: SileroVad) -> None:
    from faster_whisper import WhisperModel

    audio, _ = stream(silence(0.6), utterance(PIZZA), silence(1.0))
    [turn] = ended(TurnDetector(vad).push(audio))
    model = WhisperModel(str(whisper_tiny_dir()), device="cpu", compute_type="int8", cpu_threads=1)
    segments, _ = model.transcribe(turn.audio, language="en", beam_size=1)
    assert word_error_rate(PIZZA, " ".join(segment.text for segment in segments)) <= 0.25


def test_a_fresh_vad_shares_the_model_but_not_the_stream_state() -> None:
    from support.models import speak

    from comps.core.vad import CHUNK, SileroVad

    first = SileroVad.load()
    speech = speak("Hello there, how are you?")[: 20 * CHUNK]
    for i in range(0, speech.size - CHUNK + 1, CHUNK):
        first.probability(speech[i : i + CHUNK])
    second = first.fresh()
    reference = SileroVad.load()
    chunk = speech[: CHUNK]
    assert second.probability(chunk) == reference.probability(chunk)


def test_an_eager_pause_comes_before_the_end_with_the_same_audio_and_speech_after_it_resumes_the_turn() -> None:
    from support.models import speak

    from comps.core.vad import SileroVad, SpeechResumed, SpeechStarted, TurnDetector, TurnEnded, TurnPaused

    words = speak("What is the weather like in Paris this weekend?")
    pause = np.zeros(16_000 * 3 // 10, np.float32)  # 300 ms: past eager_ms, short of silence_ms
    detector = TurnDetector(SileroVad.load(), silence_ms=600, eager_ms=200)
    events = detector.push(np.concatenate([words, pause, words, np.zeros(16_000, np.float32)]))
    kinds = [type(event) for event in events]
    assert kinds == [SpeechStarted, TurnPaused, SpeechResumed, TurnPaused, TurnEnded], kinds
    paused, ended = events[3], events[4]
    assert isinstance(paused, TurnPaused) and isinstance(ended, TurnEnded)
    assert np.array_equal(paused.audio, ended.audio)  # the eager work had the whole turn
    assert ended.at_s - paused.at_s == pytest.approx(0.4, abs=0.04)  # 600 - 200 ms later
    with pytest.raises(ValueError, match="shorter"):
        TurnDetector(SileroVad.load(), silence_ms=300, eager_ms=300)
