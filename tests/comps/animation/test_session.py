"""The streaming lip-sync session makes the whole-clip render's frames, each once its look-ahead exists.

Same mel windows, same crops and paste-back: the frames are identical. The session runs the network
on other batch sizes than the whole render does, and oneDNN picks its convolution kernels by batch
size, so with batched calls the arithmetic (not the session) makes frames differ by a grey level or
two, depending on the CPU. These tests therefore run the network one frame per call, the same
kernel for both paths, and compare exactly: any difference is the session's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.avatar_media import astronaut, panned_frames
from support.models import speak
from support.wav2lip_weights import deterministic_wav2lip

from comps.animation.detect import HaarDetector, build_track
from comps.animation.render import Wav2LipRenderer
from comps.animation.session import LipSyncSession
from comps.animation.track import FaceTrack
from comps.animation.wav2lip.mel import MelStream, melspectrogram
from comps.core.device import resolve_device

SR = 16_000


class FramewiseRenderer(Wav2LipRenderer):
    """The real renderer, its network called once per frame: the result does not depend on the batching."""

    def generate(self, mel: np.ndarray, faces: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [super(FramewiseRenderer, self).generate(mel[i : i + 1], faces[i : i + 1]) for i in range(len(faces))]
        )


@pytest.fixture(scope="module")
def renderer() -> Wav2LipRenderer:
    return FramewiseRenderer(model=deterministic_wav2lip(), device=resolve_device("cpu"), batch_size=8)


@pytest.fixture(scope="module")
def image_track(shared_dir: Path) -> FaceTrack:
    return build_track([astronaut(shared_dir)], HaarDetector(), fps=None)


@pytest.fixture(scope="module")
def video_track(shared_dir: Path) -> FaceTrack:
    return build_track(panned_frames(astronaut(shared_dir), 6), HaarDetector(), fps=25.0)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    audio = speak("Hello! I can talk while I listen.")
    return audio[: int(1.7 * SR)]  # not a whole number of frames: the end rules matter


def assert_same_frames(streamed: list[np.ndarray], whole: list[np.ndarray]) -> None:
    """Frame by frame, pixel for pixel."""
    assert len(streamed) == len(whole)
    for index, (a, b) in enumerate(zip(streamed, whole, strict=True)):
        different = a != b
        assert not different.any(), f"frame {index}: {different.any(axis=2).sum()} pixels differ"


def stream(session: LipSyncSession, audio: np.ndarray, chunks: list[int], *, batch: int) -> list[np.ndarray]:
    """Push `audio` in pieces of the given sizes (cycled), rendering whatever is ready after each."""
    frames: list[np.ndarray] = []
    position, k = 0, 0
    while position < audio.size:
        size = chunks[k % len(chunks)]
        session.push(audio[position : position + size])
        position, k = position + size, k + 1
        while session.ready():
            frames += session.render(batch)
    session.finish()
    while session.ready():
        frames += session.render(batch)
    return frames


@pytest.mark.parametrize(("fps", "chunks", "batch"), [(25.0, [320], 2), (25.0, [4000, 17, 1], 8), (12.0, [1603], 3)])
def test_streamed_frames_are_the_whole_renders_frames(
    renderer: Wav2LipRenderer, image_track: FaceTrack, speech: np.ndarray, fps: float, chunks: list[int], batch: int
) -> None:
    whole = list(renderer.frames(image_track, speech, fps=fps, enhance=False))
    session = LipSyncSession(renderer, image_track, fps=fps)
    streamed = stream(session, speech, chunks, batch=batch)
    assert len(streamed) == len(whole) == session.total_frames()
    assert_same_frames(streamed, whole)


def test_a_video_avatar_streams_its_ping_pong_frames(
    renderer: Wav2LipRenderer, video_track: FaceTrack, speech: np.ndarray
) -> None:
    whole = list(renderer.frames(video_track, speech, fps=25.0, enhance=False))
    streamed = stream(LipSyncSession(renderer, video_track, fps=25.0), speech, [640], batch=4)
    assert_same_frames(streamed, whole)


def test_a_frame_is_ready_once_its_200_ms_look_ahead_exists(renderer: Wav2LipRenderer, image_track: FaceTrack) -> None:
    session = LipSyncSession(renderer, image_track, fps=25.0)
    session.push(np.zeros(3399, np.float32))  # frame 0 needs columns 0..15, i.e. samples up to 15*200 + 400
    assert session.ready() == 0
    session.push(np.zeros(1, np.float32))
    assert session.ready() == 1
    session.push(np.zeros(640, np.float32))  # each further 40 ms of speech completes one more frame
    assert session.ready() == 2
    assert len(session.render(8)) == 2 and session.ready() == 0


def test_very_short_speech_still_renders_like_the_whole_clip(
    renderer: Wav2LipRenderer, image_track: FaceTrack, speech: np.ndarray
) -> None:
    short = speech[:1500]  # under one 16-column window: padded with silence, as a whole render does
    whole = list(renderer.frames(image_track, short, fps=25.0, enhance=False))
    streamed = stream(LipSyncSession(renderer, image_track, fps=25.0), short, [700], batch=8)
    assert len(streamed) == len(whole) == 2
    assert_same_frames(streamed, whole)


@pytest.mark.parametrize("n", [3000, 16_123])
def test_mel_columns_streamed_in_any_pieces_equal_the_whole_clips(n: int) -> None:
    wav = (np.random.default_rng(n).standard_normal(n) * 0.1).astype(np.float32)
    for pieces in ([n], [1, 2, 399, 7], [200]):
        mel, position, k = MelStream(), 0, 0
        while position < n:
            mel.push(wav[position : position + pieces[k % len(pieces)]])
            position, k = position + pieces[k % len(pieces)], k + 1
        mel.finish()
        whole = melspectrogram(wav)
        assert mel.columns == whole.shape[1]
        for start in range(0, whole.shape[1] - 15, 5):  # every column, window by window (none for 401 samples)
            np.testing.assert_array_equal(mel.window(start), whole[:, start : start + 16])


def test_bad_use_is_refused(renderer: Wav2LipRenderer, image_track: FaceTrack) -> None:
    with pytest.raises(ValueError, match="fps"):
        LipSyncSession(renderer, image_track, fps=0)
    with pytest.raises(ValueError, match="enhancement"):
        LipSyncSession(renderer, image_track, fps=25, enhance=True)
    session = LipSyncSession(renderer, image_track, fps=25)
    with pytest.raises(ValueError, match="mono"):
        session.push(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="finished"):
        session.total_frames()
    session.finish()
    with pytest.raises(ValueError, match="after finish"):
        session.push(np.zeros(10, np.float32))
