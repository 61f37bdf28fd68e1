"""A live fragmented MP4 (H.264 + AAC) of a streamed talking-head answer, encoded in-process with PyAV.

The bytes form one continuous stream a browser's MediaSource can append as they arrive: the init
segment (ftyp + moov) and then moof + mdat fragments, each starting with an IDR frame.

Fragments: a keyframe is forced every `floor(fps * fragment_s)` frames (12 at 25 fps and 0.5 s)
and the muxer cuts a fragment at every keyframe (`frag_keyframe`), so no fragment lasts longer
than `fragment_s`. The muxer can only close a fragment when the next keyframe arrives, so the
first fragments are short and grow: keyframes at frames 0, 1, 2, 4, 8, ... (powers of two below the
GOP), then every GOP. Frame 0 goes out alone, with the init segment, while frame 1 is written, and a
player starting then is never more than a short fragment behind the render while the render itself
is barely ahead of the clock (the answer's first second). No
`frag_duration` is set: the audio track would trip it mid-GOP and start a fragment on a P-frame.

Clock: video frame i is at i / fps and speech sample n at n / sample_rate. The AAC encoder's
1024 samples of priming are kept out of the timeline by an edit list (`delay_moov` lets the muxer
see the first packets before it writes the moov), so a player, MSE included, drops them.
Write each span's audio before its frames, as the pipeline has the speech before it renders the
lips: the muxer interleaves by time and holds video packets until the audio has reached them, and
AAC needs whole 1024-sample frames plus one of lookahead, so audio written in step with the frames
holds every fragment back by about 0.2 s (the player could not start sooner anyway: MSE plays
only where both tracks are buffered).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

from comps.animation.encode import fps_arg

AUDIO_CODEC = "mp4a.40.2"  # AAC-LC, RFC 6381
AAC_FRAME = 1024  # samples per AAC-LC frame; FFmpeg's encoder takes exactly this many per call
AUDIO_BIT_RATE = 48_000  # bit/s; transparent enough for 16 kHz mono speech
PRESET = "veryfast"  # ~600 frames/s at 256x256, ~170 at 512x512 on 2 cores; ultrafast: 2x faster, a bit bigger
MOVFLAGS = "empty_moov+delay_moov+default_base_moof+frag_keyframe+skip_trailer"


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
        self._container = av.open(
            _SinkFile(sink), mode="w", format="mp4", options={"movflags": MOVFLAGS, "flush_packets": "1"}
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

    def write_frame(self, frame: npt.NDArray[np.uint8], *, keyframe: bool = False) -> None:
        """Append the next video frame: BGR uint8 of shape (height, width, 3).

        `keyframe` starts a fragment here as well (besides the schedule): writing it sends out every
        frame before it, so a caller that makes frames in batches marks each batch's last frame, and
        only that one frame waits for the next batch.
        """
        self._check_open()
        if not isinstance(frame, np.ndarray) or frame.shape != (*self.size, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 of shape {(*self.size, 3)}, got {_describe(frame)}")
        pad_h, pad_w = self.coded_size[0] - self.size[0], self.coded_size[1] - self.size[1]
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        picture.pts = self.frames
        if keyframe or self._starts_fragment(self.frames):
            picture.pict_type = av.video.frame.PictureType.I
        self._container.mux(self._video.encode(picture))
        self.frames += 1

    def _starts_fragment(self, frame: int) -> bool:
        """Keyframes at 0, 1, 2, 4, 8 ... below one GOP, then every GOP (see the module docstring)."""
        if frame < self.gop:
            return frame & (frame - 1) == 0  # 0 and the powers of two
        return frame % self.gop == 0

    def close(self) -> None:
        """Flush both encoders and write the last fragment; closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            if len(self._pending):
                self._encode_audio(self._pending)  # a short last frame: the packet's duration stays exact
            self._container.mux(self._video.encode(None))
            self._container.mux(self._audio.encode(None))
        finally:
            self._container.close()

    def _encode_audio(self, samples: npt.NDArray[np.float32]) -> None:
        chunk = av.AudioFrame.from_ndarray(samples[np.newaxis, :], format="fltp", layout="mono")
        chunk.sample_rate = self.sample_rate
        chunk.pts = self._encoded_samples
        self._encoded_samples += len(samples)
        self._container.mux(self._audio.encode(chunk))

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
