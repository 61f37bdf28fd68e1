"""Audio in and out: decode any common container to mono float32, encode WAV/MP3/FLAC/Opus/PCM.

Decoding goes through PyAV (FFmpeg's libraries in the wheel), so no ffmpeg binary is needed.
"""

from __future__ import annotations

import base64
import binascii
import io
import wave
from typing import Any, Literal

import av
import numpy as np
import numpy.typing as npt

from comps.core.errors import InvalidRequest, PayloadTooLarge

AudioFormat = Literal["wav", "mp3", "flac", "opus", "pcm"]

CONTENT_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "pcm": "audio/pcm",
}

# Container and codec per format; Opus goes in Ogg as OpenAI's API returns it, at 48 kHz (Opus' native rate).
_ENCODERS: dict[str, tuple[str, str, int | None]] = {
    "mp3": ("mp3", "libmp3lame", None),
    "flac": ("flac", "flac", None),
    "opus": ("ogg", "libopus", 48_000),
}

Samples = npt.NDArray[np.float32]


def decode_base64(value: str, *, param: str) -> bytes:
    """Decode standard or URL-safe base64 (a `data:...;base64,` prefix is accepted); 400 when invalid."""
    text = value.strip()
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    if not text:
        raise InvalidRequest(f"{param} is empty", param=param, code="empty_input")
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{param} is not valid base64: {exc}", param=param, code="invalid_base64") from exc


def decode_audio(
    data: bytes,
    *,
    sample_rate: int,
    max_seconds: float | None = None,
    param: str = "audio",
) -> Samples:
    """Decode an audio file's bytes to mono float32 in [-1, 1] at `sample_rate` Hz.

    Raises:
        InvalidRequest: empty bytes, bytes that are not audio, or audio with no samples.
        PayloadTooLarge: longer than `max_seconds`.
    """
    if not data:
        raise InvalidRequest(f"{param} is empty", param=param, code="empty_audio")
    chunks: list[Samples] = []
    total = 0
    source_samples = 0
    limit = None if max_seconds is None else int(max_seconds * sample_rate)
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise InvalidRequest(f"{param} has no audio stream", param=param, code="not_audio")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            for frame in container.decode(stream):
                source_samples += frame.samples
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    chunks.append(chunk)
                    total += chunk.size
                if limit is not None and total > limit:
                    raise PayloadTooLarge(
                        f"{param} is longer than the maximum of {max_seconds:g} s", param=param, code="audio_too_long"
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise InvalidRequest(f"{param} could not be decoded as audio: {exc}", param=param, code="not_audio") from exc
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if samples.size == 0 and source_samples > 0:
        # A clip shorter than one output sample (OPEA's 44-byte probe holds one sample at 44.1 kHz)
        # resamples to nothing; it is still valid audio: near-silence of the shortest length.
        samples = np.zeros(1, dtype=np.float32)
    if samples.size == 0:
        raise InvalidRequest(f"{param} contains no audio samples", param=param, code="empty_audio")
    if limit is not None and samples.size > limit:
        raise PayloadTooLarge(
            f"{param} is longer than the maximum of {max_seconds:g} s", param=param, code="audio_too_long"
        )
    return np.clip(samples, -1.0, 1.0)


def to_pcm16(samples: Samples) -> bytes:
    """Float samples in [-1, 1] to little-endian signed 16-bit bytes."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def encode_wav(samples: Samples, sample_rate: int) -> bytes:
    """Mono PCM16 WAV."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(to_pcm16(samples))
    return buffer.getvalue()


def encode_audio(samples: Samples, sample_rate: int, fmt: AudioFormat) -> bytes:
    """Encode mono float samples as `fmt` (wav, mp3, flac, opus in Ogg, or raw PCM16)."""
    if fmt == "wav":
        return encode_wav(samples, sample_rate)
    if fmt == "pcm":
        return to_pcm16(samples)
    container_format, codec, forced_rate = _ENCODERS[fmt]
    rate = forced_rate or sample_rate
    pcm = samples if rate == sample_rate else resample(samples, sample_rate, rate)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream: Any = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        pcm16 = np.frombuffer(to_pcm16(pcm), dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm16, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def resample(samples: Samples, source_rate: int, target_rate: int) -> Samples:
    """Resample mono float audio with FFmpeg's resampler."""
    if source_rate == target_rate or samples.size == 0:
        return samples
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = source_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=target_rate)
    parts = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)


def duration_s(samples: Samples, sample_rate: int) -> float:
    """Length in seconds."""
    return float(samples.size) / float(sample_rate)
