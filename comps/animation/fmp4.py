"""A live fragmented MP4 (H.264 + AAC) of a streamed talking-head answer, encoded in-process with PyAV.

The bytes form one continuous stream a browser's MediaSource can append as they arrive: the init
segment (ftyp + moov) and then moof + mdat fragments.

Fragments are ours (`comps.animation.fragments`): `flush()` writes everything encoded so far as one
fragment at once, so a caller that renders in batches flushes after each and every frame of the
batch goes out with it (libavformat's muxer would hold each batch's last frame until the next
keyframe, that is until the next batch exists). A fragment also starts at every keyframe, forced
every `floor(fps * fragment_s)` frames (12 at 25 fps and 0.5 s), so no fragment is longer than
`fragment_s` and a reader can start decoding at any fragment boundary that has one.

The init segment is libavformat's: its mp4 muxer, fed the first packets (`delay_moov` lets it see
them before it writes the moov), writes the codec configuration and the edit list that keeps the
AAC encoder's 1024 samples of priming out of the timeline; it goes out with the first fragment.
Frame 1 is a keyframe as well, which makes the muxer write its moov by then.

Clock: video frame i is at i / fps and speech sample n at n / sample_rate. Write each span's audio
before its frames, as the pipeline has the speech before it renders the lips (MSE plays only where
both tracks are buffered, and AAC needs whole 1024-sample frames plus one of look-ahead).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from comps.animation.encode import fps_arg
from comps.animation.fragments import NON_SYNC, SYNC, Run, Sample, fragment, init_segment, length_prefixed, timescales

AUDIO_CODEC = "mp4a.40.2"  # AAC-LC, RFC 6381
AAC_FRAME = 1024  # samples per AAC-LC frame; FFmpeg's encoder takes exactly this many per call
AUDIO_BIT_RATE = 48_000  # bit/s; transparent enough for 16 kHz mono speech
PRESET = "veryfast"  # ~600 frames/s at 256x256, ~170 at 512x512 on 2 cores; ultrafast: 2x faster, a bit bigger
# The muxer only makes the init segment; the fragments it would write are dropped.
MOVFLAGS = "empty_moov+delay_moov+default_base_moof+frag_keyframe+skip_trailer"
VIDEO_TRACK, AUDIO_TRACK = 1, 2  # the muxer's track ids, in the order the streams are added


class _SinkFile:
    """The file PyAV writes to: write() only, no seek(), so libavformat treats the output as a live stream."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self._sink = sink

    def write(self, data: bytes | memoryview) -> int:
        self._sink(bytes(data))
        return len(data)


class LiveMp4Encoder:
    """Frames (BGR uint8, HxWx3) and speech (16 kHz mono float32) in, a fragmented MP4 (H.264 + AAC) out as bytes.

    Blocking; use it from one thread at a time. `sink` is called from `write_frame`, `write_audio`
    and `close` with each piece of output as soon as the muxer produces it. An odd width or height
    is padded by one pixel (the edge repeated) because H.264 4:2:0 needs even sides, so the video
    is `coded_size` (a few pixels more never shows at the player's scale; cropping would lose them).
    """

    def __init__(
        self,
        *,
        width: int,
        height: int,
        fps: float,
        sink: Callable[[bytes], None],
        sample_rate: int = 16_000,
        fragment_s: float = 0.5,
        crf: int = 23,
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive, got {width}x{height}")
        if sample_rate <= 0 or fragment_s <= 0:
            raise ValueError(f"sample_rate and fragment_s must be positive, got {sample_rate}, {fragment_s}")
        rate = Fraction(fps_arg(fps))  # raises ValueError on fps <= 0
        self.size = (height, width)
        self.coded_size = (height + height % 2, width + width % 2)
        self.sample_rate = sample_rate
        self.gop = max(1, int(rate * Fraction(fragment_s).limit_denominator(10_000)))  # frames per fragment
        self.frames = 0
        self.audio_samples = 0
        self._pending = np.zeros(0, np.float32)  # speech not yet a whole AAC frame
        self._encoded_samples = 0  # pts of the next AAC frame
        self._closed = False
        self._sink = sink
        self._rate = rate
        self._muxed = bytearray()  # the muxer's output until it holds the init segment
        self._init: bytes | None = None
        self._timescales: dict[int, int] = {}  # track id -> timescale, read from the init segment once
        self._sent_init = False
        self._video_samples: list[Sample] = []
        self._video_start = 0  # frame number of the first pending video sample
        self._audio_samples: list[Sample] = []
        self._audio_start = 0  # decode time (track ticks) of the first pending audio sample
        self._sequence = 0
        self._container = av.open(
            _SinkFile(self._muxed.extend), mode="w", format="mp4", options={"movflags": MOVFLAGS, "flush_packets": "1"}
        )
        try:
            self._video = self._container.add_stream("libx264", rate=rate)
            self._video.width, self._video.height = self.coded_size[1], self.coded_size[0]
            self._video.pix_fmt = "yuv420p"
            self._video.time_base = 1 / rate
            self._video.codec_context.gop_size = self.gop
            self._video.codec_context.max_b_frames = 0
            self._video.options = {
                "preset": PRESET,
                "tune": "zerolatency",  # no lookahead, no frame threads: one packet out per frame in
                "profile": "baseline",  # x264's baseline is constrained baseline: every browser decodes it
                "crf": str(crf),
                "x264-params": "scenecut=0",  # keyframes only where we force them
            }
            self._audio = self._container.add_stream("aac", rate=sample_rate, layout="mono")
            self._audio.bit_rate = AUDIO_BIT_RATE
            self._audio.time_base = Fraction(1, sample_rate)
            self._container.start_encoding()  # opens both encoders: `codecs` is known from here on
        except BaseException:
            self._container.close()
            raise
        self.codecs = f"{_avc1(self._video.codec_context.extradata)}, {AUDIO_CODEC}"
        """RFC 6381 codecs of the stream, e.g. "avc1.42C01E, mp4a.40.2" (the level follows the frame size)."""

    @property
    def mime_type(self) -> str:
        """The type for `MediaSource.addSourceBuffer`."""
        return f'video/mp4; codecs="{self.codecs}"'

    def write_audio(self, samples: npt.NDArray[np.float32]) -> None:
        """Append the next speech samples (1-D float32 in [-1, 1] at `sample_rate`)."""
        self._check_open()
        if not isinstance(samples, np.ndarray) or samples.ndim != 1 or samples.dtype != np.float32:
            raise ValueError(f"audio must be 1-D float32 samples, got {_describe(samples)}")
        self._pending = np.concatenate([self._pending, samples])
        self.audio_samples += len(samples)
        whole = len(self._pending) - len(self._pending) % AAC_FRAME
        for start in range(0, whole, AAC_FRAME):
            self._encode_audio(self._pending[start : start + AAC_FRAME])
        self._pending = self._pending[whole:]

    def write_frame(self, frame: npt.NDArray[np.uint8]) -> None:
        """Append the next video frame: BGR uint8 of shape (height, width, 3); it goes out at the next `flush()`."""
        self._check_open()
        if not isinstance(frame, np.ndarray) or frame.shape != (*self.size, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 of shape {(*self.size, 3)}, got {_describe(frame)}")
        pad_h, pad_w = self.coded_size[0] - self.size[0], self.coded_size[1] - self.size[1]
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        picture.pts = self.frames
        if self.frames % self.gop == 0 or self.frames == 1:  # frame 1 as well: the muxer writes its moov then
            picture.pict_type = av.video.frame.PictureType.I
            self._send()  # a keyframe starts a fragment
        self._add_video(self._video.encode(picture))
        self.frames += 1

    def flush(self) -> None:
        """Send everything encoded so far as one fragment (after the init segment, once the muxer has made it)."""
        self._check_open()
        self._send()

    def _send(self) -> None:
        if self._init is None or not (self._video_samples or self._audio_samples):
            return
        if not self._sent_init:
            self._sink(self._init)
            self._sent_init = True
        self._sequence += 1
        video = Run(VIDEO_TRACK, self._video_time(self._video_start), self._video_samples)
        audio = Run(AUDIO_TRACK, self._audio_start, self._audio_samples)
        self._sink(fragment(self._sequence, [video, audio]))
        self._video_start += len(self._video_samples)
        self._audio_start += sum(sample.duration for sample in self._audio_samples)
        self._video_samples, self._audio_samples = [], []

    def _video_time(self, number: int) -> int:
        """Frame `number`'s decode time in the video track's ticks."""
        return int(number * Fraction(self._rate.denominator, self._rate.numerator) * self._ticks(VIDEO_TRACK))

    def _add_video(self, packets: list[av.Packet[Any]]) -> None:
        for packet in packets:
            number = self._video_start + len(self._video_samples)
            duration = self._video_time(number + 1) - self._video_time(number)
            flags = SYNC if packet.is_keyframe else NON_SYNC
            self._video_samples.append(Sample(length_prefixed(bytes(packet)), duration, flags))
            self._mux(packet)

    def _add_audio(self, packets: list[av.Packet[Any]]) -> None:
        for packet in packets:  # decode times from 0 at the first (priming) packet; the edit list hides it
            duration = int(packet.duration or AAC_FRAME) * self._ticks(AUDIO_TRACK) // self.sample_rate
            self._audio_samples.append(Sample(bytes(packet), duration, SYNC))
            self._mux(packet)

    def _ticks(self, track: int) -> int:
        """The track's timescale; before the init segment exists, the muxer's own rule for it."""
        if self._timescales:
            return self._timescales[track]
        if track == AUDIO_TRACK:
            return self.sample_rate
        ticks = self._rate.numerator  # libavformat: the time base's denominator, doubled up to >= 10000
        while ticks < 10_000:
            ticks *= 2
        return ticks

    def _mux(self, packet: av.Packet[Any]) -> None:
        """Feed the muxer until it has written the init segment; its fragments are not used."""
        if self._init is not None:
            return
        self._container.mux(packet)
        self._set_init(init_segment(bytes(self._muxed)))

    def _set_init(self, init: bytes | None) -> None:
        self._init = init
        if init is not None:
            self._timescales = timescales(init)

    def close(self) -> None:
        """Flush both encoders and write the last fragment; closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            if len(self._pending):
                self._encode_audio(self._pending)  # a short last frame: the packet's duration stays exact
            self._add_video(self._video.encode(None))
            self._add_audio(self._audio.encode(None))
            if self._init is None:
                self._container.close()  # a stream too short to have made the moov: the close writes it
                self._set_init(init_segment(bytes(self._muxed)))
            self._send()
        finally:
            self._container.close()

    def _encode_audio(self, samples: npt.NDArray[np.float32]) -> None:
        chunk = av.AudioFrame.from_ndarray(samples[np.newaxis, :], format="fltp", layout="mono")
        chunk.sample_rate = self.sample_rate
        chunk.pts = self._encoded_samples
        self._encoded_samples += len(samples)
        self._add_audio(self._audio.encode(chunk))

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the encoder is closed")


def _avc1(extradata: bytes | None) -> str:
    """`avc1.PPCCLL` from the encoder's SPS: profile_idc, the constraint flags and level_idc, in hex."""
    data = extradata or b""
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        nal = data[start + 3 : start + 7]
        if len(nal) == 4 and nal[0] & 0x1F == 7:  # NAL unit type 7: sequence parameter set
            return f"avc1.{nal[1]:02X}{nal[2]:02X}{nal[3]:02X}"
        start = data.find(b"\x00\x00\x01", start + 3)
    raise RuntimeError("libx264 gave no SPS in its extradata")


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} of shape {value.shape}"
    return type(value).__name__
