"""One animation request: check the mode and avatar, decode the audio, render in the inference queue, store."""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import numpy as np
import numpy.typing as npt

from comps.animation.avatars import DEFAULT_ID, Avatar, AvatarRegistry
from comps.animation.backends import BACKENDS
from comps.animation.backends.base import AnimationBackend, Capabilities
from comps.animation.fmp4 import LiveMp4Encoder
from comps.animation.live import LiveRender, LiveVideo, frame_size, mp4_file
from comps.animation.options import SadTalkerOptions, given
from comps.animation.pace import RenderPace
from comps.animation.rawframes import CONTENT_TYPE as RAW_CONTENT_TYPE
from comps.animation.rawframes import even_size, raw_frames
from comps.animation.render import RenderResult
from comps.animation.settings import MODE_ALIASES, AnimationSettings
from comps.animation.store import OutputStore
from comps.animation.streaming import LiveSession, StreamStart
from comps.animation.wav2lip.mel import SAMPLE_RATE, frame_count
from comps.core.audio import decode_audio, decode_base64
from comps.core.errors import InvalidRequest, PayloadTooLarge
from comps.core.limits import InferenceQueue

logger = logging.getLogger(__name__)

WARM_UP_S = 3.0  # the start-up render stops after the batch that passes this many seconds


@dataclass(frozen=True)
class Rendered:
    """A finished video in the store."""

    id: str
    path: Path
    result: RenderResult


class AnimationService:
    """The loaded modes, the avatars, the output store and the queue that bounds concurrent renders."""

    def __init__(
        self,
        *,
        settings: AnimationSettings,
        backends: Mapping[str, AnimationBackend],
        registry: AvatarRegistry,
        store: OutputStore,
        queue: InferenceQueue,
    ) -> None:
        """Hold the pieces the lifespan loaded."""
        self.settings = settings
        self.backends = dict(backends)
        self.registry = registry
        self.store = store
        self.queue = queue
        self.live: dict[str, LiveVideo] = {}  # videos being streamed, by id
        # How fast this process makes streamed frames, per mode (ANIMATION_STREAM_RATE=auto): GFPGAN's cost
        # is another order of magnitude than Wav2Lip's.
        self.paces = {mode: RenderPace() for mode in self.backends}

    def finish(self) -> None:
        """Blocking, at shutdown: run every mode's finish hook once (FP8 MEASURE statistics; shared ones once)."""
        hooks = (backend.capabilities.finish for backend in self.backends.values())
        for hook in dict.fromkeys(hook for hook in hooks if hook is not None):
            hook()

    def backend(self, mode: str | None) -> AnimationBackend:
        """The loaded backend of `mode` (the default when None).

        Raises:
            InvalidRequest: an unknown mode, or one this server did not load (`ANIMATION_MODES`).
        """
        return self.backends[self.mode(mode)]

    def pace(self, mode: str | None = None) -> RenderPace:
        """How fast this process streams `mode` (the default when None); raises as `backend` does."""
        return self.paces[self.mode(mode)]

    def mode(self, mode: str | None) -> str:
        """The loaded mode a request names (aliases resolved; the default when None); raises as `backend` does."""
        name = self.settings.inference_mode if mode is None else MODE_ALIASES.get(mode, mode)
        if name not in BACKENDS:
            raise InvalidRequest(
                f"unknown inference_mode {mode!r}; expected one of {', '.join(BACKENDS)}",
                param="inference_mode",
                code="unknown_mode",
            )
        if name not in self.backends:
            raise InvalidRequest(
                f"inference_mode {name!r} is not enabled on this server (enabled: {', '.join(self.backends)}; "
                "the operator adds modes with ANIMATION_MODES)",
                param="inference_mode",
                code="mode_not_enabled",
            )
        return name

    def avatar_id(self, avatar: str | None) -> str:
        """The avatar a request names, or the default one; checks it exists (blocking: reads the store)."""
        if avatar is None:
            if not self.registry.has_default:
                raise InvalidRequest(
                    "avatar is required: this server has no default avatar (set FACE to configure one)",
                    param="avatar",
                    code="avatar_required",
                )
            avatar = DEFAULT_ID
        self.registry.info(avatar, param="avatar")
        return avatar

    async def open_live(self, start: StreamStart, *, base_url: str) -> tuple[LiveSession, LiveRender]:
        """Check a stream's start and open its render: every check that can fail runs before any work.

        An fMP4 stream reserves its video in the store and is followed through `live` until
        `finish_live`; a raw-frames stream (`start.frames`) touches neither.

        Raises:
            InvalidRequest: a mode that cannot stream, a bad fps or avatar. Unavailable: the render queue is full.
        """
        mode = self.mode(start.inference_mode)
        capabilities = self.backends[mode].capabilities
        if capabilities.session is None:
            raise InvalidRequest(
                "this inference_mode renders whole clips only; stream with a Wav2Lip mode",
                param="inference_mode",
                code="stream_not_supported",
            )
        self._check_options(capabilities, start.fps, SadTalkerOptions())
        avatar_id = await anyio.to_thread.run_sync(self.avatar_id, start.avatar)
        found: Avatar = await anyio.to_thread.run_sync(lambda: self.registry.get(avatar_id, param="avatar"))
        self.queue.check()
        if start.fps is not None or start.frames:
            rate = start.fps or found.track.fps or self.settings.fps
        else:  # an fMP4 stream that names no rate: the full one, or half where this CPU cannot keep up
            rate = self.paces[mode].rate(found.track.fps or self.settings.fps, self.settings.stream_rate)
        lipsync = capabilities.session(found.track, rate)
        width, height = frame_size(lipsync)
        if start.frames:
            width, height = even_size(width, height)
            session = LiveSession(
                id=uuid.uuid4().hex, video_url="", content_type=RAW_CONTENT_TYPE, width=width, height=height, fps=rate
            )
            return session, LiveRender(lipsync, output=raw_frames(width=width, height=height))
        video_id, partial = self.store.reserve_live()  # created and locked now: followed from here on
        video = LiveVideo(partial)
        self.live[video_id] = video
        output = mp4_file(partial, video, width=width, height=height, fps=rate)
        render = LiveRender(lipsync, output=output, pace=self.paces[mode])
        return LiveSession(id=video_id, video_url=f"{base_url}/v1/videos/{video_id}", fps=rate), render

    def warm_up(self, batches: tuple[int, ...] = (2, 4, 8, 8)) -> None:
        """Blocking, at start: render a short silent stream of the default avatar in the default mode, into its pace.

        Only the last batch is measured: the first ones pay for the kernels' first calls (which the
        first answer then does not); a mode slow enough to pass `WARM_UP_S` stops early. Nothing when
        there is no default avatar or the mode cannot stream.
        """
        factory, pace = self.backend(None).capabilities.session, self.pace()
        if factory is None or not self.registry.has_default:
            return
        track = self.registry.get(DEFAULT_ID, param="avatar").track
        fps = track.fps or self.settings.fps
        session = factory(track, fps)
        session.push(np.zeros(round((sum(batches) + 1) / fps * SAMPLE_RATE) + SAMPLE_RATE // 4, np.float32))
        session.finish()
        width, height = frame_size(session)
        encoder = LiveMp4Encoder(width=width, height=height, fps=fps, sink=lambda data: None)
        began = time.perf_counter()
        try:
            encoder.write_audio(session.speech(0, session.samples))
            for size in batches:
                started = time.perf_counter()
                frames = session.render(size)  # fewer where ANIMATION_BATCH_SIZE is smaller
                for frame in frames:
                    encoder.write_frame(frame)
                encoder.flush()
                measured = (len(frames), time.perf_counter() - started)
                if time.perf_counter() - began > WARM_UP_S:  # a slow mode (GFPGAN on a CPU): enough to know
                    break
        finally:
            encoder.close()
        pace.observe(*measured)
        logger.info(
            "%s streams render at %.1f frames/s here: %s (ANIMATION_STREAM_RATE=%s)",
            self.settings.inference_mode,
            pace.frames_per_s or 0.0,
            f"{pace.rate(fps, self.settings.stream_rate):g} fps for a {fps:g} fps avatar",
            self.settings.stream_rate,
        )

    def finish_live(self, session: LiveSession, render: LiveRender, completed: bool) -> dict[str, object]:
        """Blocking (file renames and pruning): commit a completed stream's video, or discard an abandoned one.

        Returns a completed stream's `done` record (less its type), {} for an abandoned one. A
        raw-frames stream has nothing stored: its `video_url` and `video_path` are "".
        """
        result = render.result if completed else None
        video = self.live.pop(session.id, None)  # None: raw frames
        path = ""
        if video is not None:
            if result is None:
                self.store.discard(session.id)
            else:
                video.final = self.store.final_path(session.id)  # readers that open it from now on find the whole file
                path = str(self.store.commit(session.id))
            video.close()
        if result is None:
            return {}
        logger.info(
            "%s %s: streamed %d frames at %g fps (%.2f s), made at %.1f frames/s",
            "video" if video is not None else "raw frames",
            session.id,
            result.frames,
            result.fps,
            result.duration_s,
            result.frames / result.render_s if result.render_s > 0 else 0.0,
        )
        return {
            "id": session.id,
            "video_url": session.video_url,
            "video_path": path,
            "frames": result.frames,
            "fps": result.fps,
            "duration_s": result.duration_s,
        }

    async def animate(
        self,
        audio_b64: str,
        *,
        avatar: str | None,
        mode: str | None,
        fps: float | None,
        param: str,
        options: SadTalkerOptions | None = None,
    ) -> Rendered:
        """Render base64 speech on an avatar; every check that can fail runs before the queue."""
        backend = self.backend(mode)
        capabilities = backend.capabilities
        options = SadTalkerOptions() if options is None else options
        self._check_options(capabilities, fps, options)
        avatar_id = await anyio.to_thread.run_sync(self.avatar_id, avatar)
        audio = await anyio.to_thread.run_sync(self._decode, audio_b64, param)
        found: Avatar = await anyio.to_thread.run_sync(lambda: self.registry.get(avatar_id, param="avatar"))
        rate = capabilities.fixed_fps or fps or found.track.fps or self.settings.fps
        if audio.size * rate < capabilities.min_audio_frames * SAMPLE_RATE:
            frames = capabilities.min_audio_frames
            raise InvalidRequest(
                f"{param}: audio shorter than {'one video frame' if frames == 1 else f'{frames} video frames'} "
                f"({1000 * frames / rate:g} ms)",
                param=param,
                code="audio_too_short",
            )
        frames = frame_count(audio.size, rate)
        if frames > self.settings.max_frames:
            raise PayloadTooLarge(
                f"{param}: {audio.size / SAMPLE_RATE:.2f} s at {rate:g} fps is {frames} frames; the limit is "
                f"{self.settings.max_frames} (ANIMATION_MAX_FRAMES): send shorter audio or a lower fps",
                param=param,
                code="too_many_frames",
            )
        return await self.queue.run(self._render, backend, found, audio, rate, options)

    @staticmethod
    def _check_options(capabilities: Capabilities, fps: float | None, options: SadTalkerOptions) -> None:
        """A fixed-rate mode refuses another fps; a mode refuses the options it does not take (never ignored)."""
        fixed = capabilities.fixed_fps
        if fixed is not None and fps is not None and fps != fixed:
            raise InvalidRequest(
                f"this inference_mode renders at {fixed:g} fps only; omit fps or send {fixed:g}",
                param="fps",
                code="fps_fixed",
            )
        refused = [name for name in given(options) if name not in capabilities.options]
        if refused:
            raise InvalidRequest(
                f"{', '.join(refused)}: only the SadTalker modes take these options",
                param=refused[0],
                code="option_not_supported",
            )

    def _decode(self, audio_b64: str, param: str) -> npt.NDArray[np.float32]:
        data = decode_base64(audio_b64, param=param)
        return decode_audio(data, sample_rate=SAMPLE_RATE, max_seconds=self.settings.max_audio_seconds, param=param)

    def _render(
        self,
        backend: AnimationBackend,
        avatar: Avatar,
        audio: npt.NDArray[np.float32],
        fps: float,
        options: SadTalkerOptions,
    ) -> Rendered:
        """Blocking: render into the store's partial file inside this request's own temp folder."""
        video_id, partial = self.store.reserve()
        try:
            with tempfile.TemporaryDirectory(prefix="animation-") as workdir:
                result = backend.render(
                    avatar.track, audio, out_path=partial, fps=fps, workdir=Path(workdir), options=options
                )
        except BaseException:
            self.store.discard(video_id)
            raise
        path = self.store.commit(video_id)
        logger.info(
            "video %s: avatar %s, %d frames at %g fps (%.2f s)",
            video_id,
            avatar.info.id,
            result.frames,
            result.fps,
            result.duration_s,
        )
        return Rendered(id=video_id, path=path, result=result)
