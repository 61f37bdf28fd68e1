"""A streaming lip-sync session: speech pushed as it arrives, each frame made once its 200 ms of look-ahead exists.

Frame `i` at `fps` is drawn from the 16 mel columns starting at `int(i * 80 / fps)`, which need the
audio up to about 212 ms past the frame's own time. The session renders exactly the frames whose
columns are final, with the same crops, network and paste-back as a whole-clip render of the same
audio, so the frames are the same; `finish()` renders the rest under the whole clip's end rules
(frame count from the duration, the last windows clamped to the last 16 columns).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from comps.animation.render import Wav2LipRenderer
from comps.animation.track import FaceTrack, Frame
from comps.animation.wav2lip.mel import (
    HOP,
    MEL_PER_SECOND,
    SAMPLE_RATE,
    WINDOW,
    MelStream,
    frame_count,
    mel_windows,
)


class LipSyncSession:
    """One answer's lip-sync on one avatar; blocking (run it in a worker thread), one caller at a time.

    Args:
        renderer: the loaded Wav2Lip renderer (shared; its network calls are independent).
        track: the avatar's face track.
        fps: output frames per second.
        enhance: run GFPGAN on each face (the renderer must have an enhancer).
    """

    def __init__(self, renderer: Wav2LipRenderer, track: FaceTrack, *, fps: float, enhance: bool = False) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if enhance and (renderer.enhancer is None or track.align is None):
            raise ValueError("enhancement asked for, but no GFPGAN enhancer or face alignment is available")
        self.renderer = renderer
        self.track = track
        self.fps = fps
        self.enhance = enhance
        self._mel = MelStream()
        self._crops: dict[int, npt.NDArray[np.uint8]] = {}
        self._audio = np.zeros(SAMPLE_RATE, dtype=np.float32)  # grown by doubling; the first `samples` are speech
        self.rendered = 0  # frames made so far

    @property
    def samples(self) -> int:
        """Speech samples pushed so far (16 kHz)."""
        return self._mel.samples

    @property
    def finished(self) -> bool:
        """Whether `finish()` was called."""
        return self._mel.finished

    def push(self, samples: npt.NDArray[np.float32]) -> None:
        """Add the next speech samples (16 kHz mono float32 in [-1, 1]); cheap, renders nothing."""
        if samples.ndim != 1:
            raise ValueError(f"speech must be mono samples, got shape {samples.shape}")
        end = self.samples + samples.size
        if end > self._audio.size:
            self._audio = np.concatenate(
                [self._audio, np.zeros(max(end, 2 * self._audio.size) - self._audio.size, np.float32)]
            )
        self._audio[self.samples : end] = samples
        self._mel.push(samples)

    def finish(self) -> None:
        """The speech has ended; the remaining frames become ready."""
        self._mel.finish()

    def ready(self) -> int:
        """Frames that can be made now and are not made yet."""
        if self.finished:
            return self.total_frames() - self.rendered
        columns = self._mel.columns
        # Frame i is ready when its window start int(i * 80 / fps) + 16 <= final columns.
        last = max(-1, int(np.floor((columns - WINDOW) * self.fps / MEL_PER_SECOND)))
        while last >= 0 and int(last * MEL_PER_SECOND / self.fps) + WINDOW > columns:
            last -= 1
        while int((last + 1) * MEL_PER_SECOND / self.fps) + WINDOW <= columns:
            last += 1
        return max(0, last + 1 - self.rendered)

    def total_frames(self) -> int:
        """Frames of the whole answer (known once finished)."""
        if not self.finished:
            raise ValueError("the frame count is known once the speech has finished")
        return frame_count(self.samples, self.fps)

    def render(self, limit: int) -> list[Frame]:
        """Make up to `limit` of the ready frames, in order, in one network call (at most its batch size)."""
        count = min(limit, self.ready(), self.renderer.batch_size)
        if count <= 0:
            return []
        start = self.rendered
        windows = self._windows(start, count)
        frames = self.renderer.render_batch(self.track, start, windows, enhance=self.enhance, crops=self._crops)
        self.rendered += count
        return frames

    def _windows(self, start: int, count: int) -> npt.NDArray[np.float32]:
        """(count, 1, 80, 16) mel windows of frames `start ..`, as `mel_windows` gives them for the whole clip."""
        if self.finished and (self.samples < (WINDOW - 1) * HOP or self._mel.columns < WINDOW):
            # Under 0.19 s of speech: the whole clip's rule (padded with silence) for these few frames.
            return mel_windows(self.speech(0, self.samples), self.fps)[start : start + count]
        columns = self._mel.columns
        starts = [int(i * MEL_PER_SECOND / self.fps) for i in range(start, start + count)]
        if self.finished:
            starts = [min(s, max(0, columns - WINDOW)) for s in starts]
        return np.stack([self._mel.window(s)[None] for s in starts])

    def speech(self, start: int, end: int) -> npt.NDArray[np.float32]:
        """Speech samples `start .. end` as pushed (a copy)."""
        return self._audio[start : min(end, self.samples)].copy()

    def audio_until(self, frames: int) -> int:
        """Speech samples that play with the first `frames` frames (the answer's audio track keeps pace)."""
        return min(self.samples, round(frames * SAMPLE_RATE / self.fps))
