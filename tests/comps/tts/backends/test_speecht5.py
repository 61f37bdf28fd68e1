"""SpeechT5 from a tiny random config runs the product's code path: loading by path, voices, batching, speed."""

from __future__ import annotations

import numpy as np
import pytest

from comps.tts.backends import load_speecht5
from comps.tts.backends.base import VoiceError
from comps.tts.backends.speecht5 import MAX_LENGTH_RATIO, SpeechT5Backend, find_xvectors, load_xvector
from comps.tts.settings import TtsSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def backend(tiny_speecht5) -> SpeechT5Backend:
    settings = TtsSettings(
        backend="speecht5",
        model=str(tiny_speecht5.model_dir),
        vocoder=str(tiny_speecht5.vocoder_dir),
        voices_dir=tiny_speecht5.voices_dir,
        model_cache_dir=tiny_speecht5.model_dir.parent / "empty-cache",
        offline=True,
        device="cpu",
    )
    loaded = load_speecht5(settings)
    assert isinstance(loaded, SpeechT5Backend)
    return loaded


def _expected_samples(backend: SpeechT5Backend, text: str, tiny, *, padded_tokens: int | None = None) -> int:
    # Generation runs to its bound: int(tokens * ratio / r) steps of r frames each, hop samples per frame.
    tokens = padded_tokens or len(backend._tokenizer(text)["input_ids"])
    steps = int(tokens * MAX_LENGTH_RATIO / tiny.reduction_factor)
    return steps * tiny.reduction_factor * tiny.hop


def test_loads_by_path_with_default_male_and_dropped_in_voices(backend: SpeechT5Backend) -> None:
    assert backend.voices == ["default", "male", "narrator"]
    assert backend.sample_rate == 16_000
    assert backend.max_chunk_chars == 60  # half of the tiny model's 120 text positions


def test_audio_length_follows_the_text(backend: SpeechT5Backend, tiny_speecht5) -> None:
    (short,) = backend.synthesize(["Hello there."], voice="default", speed=1.0)
    (long,) = backend.synthesize(["Hello there, how are you today?"], voice="male", speed=1.0)
    assert short.dtype == np.float32 and np.isfinite(short).all() and np.abs(short).max() <= 1.0
    assert short.size == _expected_samples(backend, "Hello there.", tiny_speecht5)
    assert long.size == _expected_samples(backend, "Hello there, how are you today?", tiny_speecht5)
    assert long.size > 2 * short.size
    assert np.abs(short).max() > 0  # the random vocoder still makes sound, not silence


def test_a_batch_returns_one_array_per_chunk(backend: SpeechT5Backend, tiny_speecht5) -> None:
    chunks = ["Hi.", "A longer chunk of text.", "Bye!"]
    audio = backend.synthesize(chunks, voice="narrator", speed=1.0)
    assert len(audio) == 3
    # All three ran in one padded batch, so each stops at the bound set by the longest input.
    padded = max(len(backend._tokenizer(c)["input_ids"]) for c in chunks)
    assert {a.size for a in audio} == {_expected_samples(backend, "", tiny_speecht5, padded_tokens=padded)}


def test_speed_stretches_time_not_the_sample_rate(backend: SpeechT5Backend, tiny_speecht5) -> None:
    text = "Hello there."
    (normal,) = backend.synthesize([text], voice="default", speed=1.0)
    (fast,) = backend.synthesize([text], voice="default", speed=2.0)
    (slow,) = backend.synthesize([text], voice="default", speed=0.5)
    frames = normal.size // tiny_speecht5.hop
    assert fast.size == round(frames / 2) * tiny_speecht5.hop
    assert slow.size == frames * 2 * tiny_speecht5.hop


def test_numbers_are_spelled_out_and_a_chunk_too_long_for_the_model_is_split_again(backend: SpeechT5Backend) -> None:
    # "123456789" spells out to far more than the tiny model's 120 positions: split, never truncated.
    text = "Call 123456789 now or 987654321 later please"
    pieces = backend._fit_tokens(text)
    assert len(pieces) > 1
    assert " ".join(pieces) == text
    assert all(len(backend._tokenizer(p)["input_ids"]) <= 120 for p in pieces)


def test_xvector_files_are_checked(tmp_path) -> None:
    np.save(tmp_path / "short.npy", np.zeros(100, dtype=np.float32))
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    with pytest.raises(VoiceError, match=r"must hold 512 values, found \(100,\)"):
        load_xvector(tmp_path / "short.npy", dim=512)
    with pytest.raises(VoiceError, match="could not be read"):
        load_xvector(tmp_path / "broken.npy", dim=512)
    assert find_xvectors(tmp_path) == {"broken": tmp_path / "broken.npy", "short": tmp_path / "short.npy"}
