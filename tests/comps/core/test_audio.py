from __future__ import annotations

import base64

import numpy as np
import pytest

from comps.core.audio import decode_audio, decode_base64, encode_audio, encode_wav, resample
from comps.core.errors import InvalidRequest, PayloadTooLarge

OPEA_PROBE = "UklGRigAAABXQVZFZm10IBIAAAABAAEARKwAAIhYAQACABAAAABkYXRhAgAAAAEA"


def _tone(seconds: float, rate: int = 16_000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "opus"])
def test_round_trip_every_format(fmt: str) -> None:
    tone = _tone(1.0)
    data = encode_audio(tone, 16_000, fmt)  # type: ignore[arg-type]
    back = decode_audio(data, sample_rate=16_000)
    # Lossy codecs add padding/priming; length within 0.1 s, energy kept.
    assert abs(back.size - tone.size) < 1_600
    assert 0.2 < float(np.sqrt(np.mean(back**2))) < 0.5


def test_wav_is_exact_pcm16() -> None:
    tone = _tone(0.5)
    back = decode_audio(encode_wav(tone, 16_000), sample_rate=16_000)
    assert back.size == tone.size
    assert np.max(np.abs(back - tone)) < 1e-4


def test_pcm_is_raw_int16() -> None:
    tone = _tone(0.25)
    raw = encode_audio(tone, 16_000, "pcm")
    assert len(raw) == tone.size * 2


def test_resampling_on_decode() -> None:
    tone = _tone(1.0, rate=44_100)
    back = decode_audio(encode_wav(tone, 44_100), sample_rate=16_000)
    assert abs(back.size - 16_000) <= 32


def test_opea_single_sample_probe_decodes() -> None:
    samples = decode_audio(base64.b64decode(OPEA_PROBE), sample_rate=16_000)
    assert 0 < samples.size < 10


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_audio"),
        (b"this is not audio at all" * 10, "not_audio"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "not_audio"),
    ],
)
def test_bad_audio_is_invalid_request(data: bytes, code: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        decode_audio(data, sample_rate=16_000)
    assert err.value.status == 400
    assert err.value.code in {code, "empty_audio", "not_audio"}


def test_truncated_mp3_is_invalid_request() -> None:
    data = encode_audio(_tone(1.0), 16_000, "mp3")[:50]
    with pytest.raises(InvalidRequest):
        decode_audio(data, sample_rate=16_000)


def test_over_long_audio_is_payload_too_large() -> None:
    with pytest.raises(PayloadTooLarge):
        decode_audio(encode_wav(_tone(3.0), 16_000), sample_rate=16_000, max_seconds=2.0)


def test_base64_variants() -> None:
    assert decode_base64(base64.b64encode(b"abc").decode(), param="audio") == b"abc"
    assert decode_base64("data:audio/wav;base64," + base64.b64encode(b"abc").decode(), param="audio") == b"abc"
    assert decode_base64(base64.urlsafe_b64encode(b"\xfb\xff\xfe").decode(), param="audio") == b"\xfb\xff\xfe"
    with pytest.raises(InvalidRequest, match="not valid base64"):
        decode_base64("***", param="audio")
    with pytest.raises(InvalidRequest, match="empty"):
        decode_base64("  ", param="audio")


def test_resample_length() -> None:
    assert abs(resample(_tone(1.0, 22_050), 22_050, 16_000).size - 16_000) <= 32
