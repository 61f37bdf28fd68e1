"""LiveMp4Encoder: real encodes at small sizes, read back with ffprobe and PyAV, and walked box by box."""

from __future__ import annotations

import io
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest

from comps.animation.fmp4 import AAC_FRAME, LiveMp4Encoder

FPS = 25
SR = 16_000
W, H = 128, 96


def ffprobe(path: Path, *args: str) -> dict[str, Any]:
    """ffprobe's JSON for `path`; streams, format and decoded frame counts unless `args` ask for something else."""
    query = args or ("-show_streams", "-show_format", "-count_frames")
    out = subprocess.run(["ffprobe", "-v", "error", *query, "-of", "json", str(path)], capture_output=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def chirp(seconds: float) -> npt.NDArray[np.float32]:
    """A 200 Hz -> 1.1 kHz chirp: its autocorrelation falls off within a few ms, so any shift between tracks shows."""
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * (200 + 150 * t) * t)).astype(np.float32)


def picture(i: int, width: int = W, height: int = H) -> npt.NDArray[np.uint8]:
    """A moving gradient (BGR), so every frame differs and the encoder has real work."""
    y, x = np.mgrid[0:height, 0:width]
    x = x + 3 * i
    return np.stack([(2 * x) % 256, (2 * y) % 256, (x + y) % 256], axis=-1).astype(np.uint8)


class Recorder:
    """The sink: every call's bytes, in order."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.calls.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.calls)


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, bytes]]:
    """The ISO BMFF boxes in data[start:end] as (type, body)."""
    out, pos, end = [], start, len(data) if end is None else end
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        assert size >= 8, f"bad box at {pos}"
        out.append((kind, data[pos + 8 : pos + size]))
        pos += size
    return out


def video_fragments(data: bytes) -> list[tuple[int, bool]]:
    """Per moof: (video samples in it, whether its first video sample is a sync sample)."""
    result = []
    for kind, body in boxes(data):
        if kind != b"moof":
            continue
        for traf_kind, traf in boxes(body):
            if traf_kind != b"traf":
                continue
            parts = dict(boxes(traf))
            if struct.unpack(">I", parts[b"tfhd"][4:8])[0] != 1:  # track 1 is the video
                continue
            trun = parts[b"trun"]
            flags = int.from_bytes(trun[1:4], "big")
            count = struct.unpack(">I", trun[4:8])[0]
            assert flags == 0x701, "data offset, then each sample's duration, size and flags"
            first_flags = struct.unpack(">I", trun[20:24])[0]  # after count, offset, duration and size
            result.append((count, not first_flags & 0x10000))  # 0x10000: sample_is_non_sync_sample
    return result


def encode(
    rec: Recorder, *, seconds: float, width: int = W, height: int = H, fragment_s: float = 0.5
) -> LiveMp4Encoder:
    """Write `seconds` of chirp and frames the way the pipeline does: each chunk's speech, then its frames."""
    enc = LiveMp4Encoder(width=width, height=height, fps=FPS, sink=rec, fragment_s=fragment_s)
    audio = chirp(seconds)
    frames = int(seconds * FPS)
    chunk = 3_000  # not a multiple of the AAC frame, nor of a video frame's 640 samples
    for start in range(0, len(audio), chunk):
        enc.write_audio(audio[start : start + chunk])
        while enc.frames < min(frames, (start + chunk) * FPS // SR):
            enc.write_frame(picture(enc.frames, width, height))
    return enc


def test_the_stream_so_far_is_a_valid_mp4_and_a_flush_sends_every_frame_written(tmp_path: Path) -> None:
    rec = Recorder()
    enc = LiveMp4Encoder(width=W, height=H, fps=FPS, sink=rec)
    audio = chirp(1.2)
    enc.write_audio(audio)  # the sentence's speech first, as the pipeline has it before it renders
    enc.write_frame(picture(0))
    enc.write_frame(picture(1))
    assert rec.data == b""  # nothing goes out before a flush
    enc.flush()
    head = rec.data
    assert [kind for kind, _ in boxes(head)] == [b"ftyp", b"moov", b"moof", b"mdat"]
    assert video_fragments(head) == [(2, True)]  # both frames of the batch, the first a keyframe
    assert b"ftyp" in rec.calls[0] and b"moov" in rec.calls[0]
    for i in range(2, FPS - 1):
        enc.write_frame(picture(i))
    enc.flush()

    partial = tmp_path / "partial.mp4"
    partial.write_bytes(rec.data)
    info = ffprobe(partial)
    assert "mp4" in info["format"]["format_name"].split(",")
    streams = {s["codec_type"]: s for s in info["streams"]}
    assert (streams["video"]["codec_name"], streams["audio"]["codec_name"]) == ("h264", "aac")
    assert (streams["video"]["profile"], streams["video"]["pix_fmt"]) == ("Constrained Baseline", "yuv420p")
    assert int(streams["video"]["nb_read_frames"]) == FPS - 1  # every frame written is out, the last included
    assert all(kind in {b"moof", b"mdat"} for kind, _ in boxes(rec.data)[2:])
    enc.close()


def test_codecs_names_the_sps_in_the_init_segment() -> None:
    rec = Recorder()
    enc = encode(rec, seconds=0.2)
    enc.close()
    avcc = rec.data[rec.data.index(b"avcC") + 4 :]
    assert enc.codecs == f"avc1.{avcc[1]:02X}{avcc[2]:02X}{avcc[3]:02X}, mp4a.40.2"
    assert enc.codecs.startswith("avc1.42C0")  # constrained baseline
    assert enc.mime_type == f'video/mp4; codecs="{enc.codecs}"'


def test_the_whole_answer_decodes_with_both_tracks_on_one_clock(tmp_path: Path) -> None:
    rec = Recorder()
    seconds = 3.03  # neither track a whole number of fragments or AAC frames
    enc = encode(rec, seconds=seconds)
    enc.close()
    assert (enc.frames, enc.audio_samples) == (75, int(seconds * SR))
    path = tmp_path / "answer.mp4"
    path.write_bytes(rec.data)

    info = ffprobe(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert int(video["nb_read_frames"]) == enc.frames
    assert float(video["start_time"]) == 0
    assert float(video["duration"]) == pytest.approx(enc.frames / FPS, abs=1e-3)

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.start_time == 0  # the priming samples lie before 0, cut by the edit list
        frames = list(container.decode(stream))
    assert frames[0].time == 0 and frames[0].sample_rate == SR
    pcm = np.concatenate([f.to_ndarray()[0] for f in frames])
    assert abs(len(pcm) - enc.audio_samples) < AAC_FRAME  # the tail is padded to a whole AAC frame
    reference = chirp(seconds)
    n = enc.audio_samples - 200

    def correlation(lag: int) -> float:  # decoded sample j (at j / SR) against input sample j + lag
        x, y = pcm[200 : n - 200], reference[200 + lag : n - 200 + lag]
        return float(np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y)))

    best = max(range(-160, 161), key=correlation)  # +-10 ms
    assert correlation(best) > 0.9, (best, correlation(best))
    assert abs(best) <= 16, best  # within 1 ms: the 64 ms of AAC priming did not shift the speech


def test_a_keyframe_every_fragment_s_starts_a_fragment_and_flushes_cut_between(tmp_path: Path) -> None:
    rec = Recorder()
    enc = encode(rec, seconds=2.6, fragment_s=0.3)  # never flushed: fragments only at the keyframes
    enc.close()
    fragments = video_fragments(rec.data)
    assert all(key for _, key in fragments)
    # 65 frames, 7 = floor(25 * 0.3) per GOP (frame 1 is a keyframe too, for the muxer's moov, but
    # nothing can go out before that moov exists, so the first fragment is a whole GOP as well)
    assert [count for count, _ in fragments] == [7] * 9 + [2]
    assert sum(count for count, _ in fragments) == enc.frames

    path = tmp_path / "fragments.mp4"
    path.write_bytes(rec.data)
    packets = ffprobe(path, "-select_streams", "v", "-show_entries", "packet=pts_time,flags")["packets"]
    keys = [float(p["pts_time"]) for p in packets if "K" in p["flags"]]
    assert keys[0] == 0
    assert max(b - a for a, b in zip(keys, keys[1:], strict=False)) <= 0.3 + 1e-6

    batched = Recorder()
    enc = LiveMp4Encoder(width=W, height=H, fps=FPS, sink=batched, fragment_s=0.5)
    enc.write_audio(chirp(1.0))
    for size in (2, 3, 4, 5):  # batches, each flushed: fragments end where the batches do (and at frame 12)
        for _ in range(size):
            enc.write_frame(picture(enc.frames))
        enc.flush()
    assert [count for count, _ in video_fragments(batched.data)] == [2, 3, 4, 3, 2]
    assert [key for _, key in video_fragments(batched.data)] == [True, False, False, False, True]


def test_an_odd_size_is_padded_by_one_pixel() -> None:
    rec = Recorder()
    enc = encode(rec, seconds=0.5, width=97, height=95)
    enc.close()
    assert enc.coded_size == (96, 98)
    with av.open(io.BytesIO(rec.data), mode="r") as container:
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(decoded) == enc.frames and decoded[0].shape == (96, 98, 3)
    last = decoded[-1].astype(int)
    source = picture(enc.frames - 1, 97, 95).astype(int)
    assert np.abs(last[:95, :97] - source).mean() < 8
    assert np.abs(last[95, :97] - source[94]).mean() < 8  # the padding repeats the edge


def test_bad_input_is_refused() -> None:
    enc = LiveMp4Encoder(width=W, height=H, fps=FPS, sink=Recorder())
    with pytest.raises(ValueError, match=r"frame must be uint8 of shape \(96, 128, 3\), got uint8 of shape \(96, 127"):
        enc.write_frame(np.zeros((H, W - 1, 3), np.uint8))
    with pytest.raises(ValueError, match="got float32 of shape"):
        enc.write_frame(np.zeros((H, W, 3), np.float32))
    with pytest.raises(ValueError, match="got uint8 of shape \\(96, 128\\)"):
        enc.write_frame(np.zeros((H, W), np.uint8))
    with pytest.raises(ValueError, match="audio must be 1-D float32 samples, got float64"):
        enc.write_audio(np.zeros(100))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="got float32 of shape \\(100, 1\\)"):
        enc.write_audio(np.zeros((100, 1), np.float32))
    enc.close()
    enc.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        enc.write_frame(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ValueError, match="closed"):
        enc.write_audio(np.zeros(10, np.float32))


@pytest.mark.parametrize(
    "kwargs", [{"fps": 0}, {"width": 0}, {"fragment_s": 0}, {"sample_rate": -1}], ids=["fps", "width", "frag", "rate"]
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    settings: dict[str, float] = {"width": W, "height": H, "fps": FPS, **kwargs}
    with pytest.raises(ValueError, match="must be positive"):
        LiveMp4Encoder(sink=Recorder(), **settings)  # type: ignore[arg-type]


def test_a_flush_with_nothing_new_writes_nothing_and_close_sends_the_rest() -> None:
    rec = Recorder()
    enc = LiveMp4Encoder(width=W, height=H, fps=FPS, sink=rec)
    enc.write_audio(chirp(0.5))
    enc.write_frame(picture(0))
    enc.flush()  # the muxer has not made its moov yet (it does at frame 1): the frame waits
    assert rec.data == b""
    for n in range(1, 9):
        enc.write_frame(picture(n))
    enc.flush()
    sent = len(rec.data)
    enc.flush()
    assert len(rec.data) == sent and sum(count for count, _ in video_fragments(rec.data)) == 9
    enc.close()
    assert sum(count for count, _ in video_fragments(rec.data)) == 9  # no frame twice
    with av.open(io.BytesIO(rec.data), mode="r") as container:
        assert len(list(container.decode(video=0))) == 9
