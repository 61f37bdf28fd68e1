"""One animation request: check the mode and avatar, decode the audio, render in the inference queue, store."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import numpy as np
import numpy.typing as npt

from comps.animation.avatars import DEFAULT_ID, Avatar, AvatarRegistry
from comps.animation.backends import BACKENDS
from comps.animation.backends.base import AnimationBackend, FinishingBackend
from comps.animation.options import OptionsBackend, RenderOptions
from comps.animation.render import RenderResult
from comps.animation.settings import MODE_ALIASES, AnimationSettings
from comps.animation.store import OutputStore
from comps.animation.wav2lip.mel import SAMPLE_RATE
from comps.core.audio import decode_audio, decode_base64
from comps.core.errors import InvalidRequest
from comps.core.limits import InferenceQueue

logger = logging.getLogger(__name__)


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

    def finish(self) -> None:
        """Blocking, at shutdown: let every mode that has end-of-service work do it (FP8 MEASURE statistics)."""
        for backend in self.backends.values():
            if isinstance(backend, FinishingBackend):
                backend.finish()

    def backend(self, mode: str | None) -> AnimationBackend:
        """The loaded backend of `mode` (the default when None).

        Raises:
            InvalidRequest: an unknown mode, or one this server did not load (`ANIMATION_MODES`).
        """
        name = self.settings.inference_mode if mode is None else MODE_ALIASES.get(mode, mode)
        if name not in BACKENDS:
            raise InvalidRequest(
                f"unknown inference_mode {mode!r}; expected one of {', '.join(BACKENDS)}",
                param="inference_mode",
                code="unknown_mode",
            )
        loaded = self.backends.get(name)
        if loaded is None:
            raise InvalidRequest(
                f"inference_mode {name!r} is not enabled on this server (enabled: {', '.join(self.backends)}; "
                "the operator adds modes with ANIMATION_MODES)",
                param="inference_mode",
                code="mode_not_enabled",
            )
        return loaded

    def avatar_id(self, avatar: str | None) -> str:
        """The avatar a request names, or the default one; checks it exists (cheap)."""
        if avatar is None:
            if not any(info.id == DEFAULT_ID for info in self.registry.list()):
                raise InvalidRequest(
                    "avatar is required: this server has no default avatar (set FACE to configure one)",
                    param="avatar",
                    code="avatar_required",
                )
            avatar = DEFAULT_ID
        self.registry.info(avatar, param="avatar")
        return avatar

    async def animate(
        self,
        audio_b64: str,
        *,
        avatar: str | None,
        mode: str | None,
        fps: float | None,
        param: str,
        options: RenderOptions | None = None,
    ) -> Rendered:
        """Render base64 speech on an avatar; every check that can fail runs before the queue."""
        backend = self.backend(mode)
        options = options or RenderOptions()
        self._check_options(backend, fps, options)
        avatar_id = self.avatar_id(avatar)
        audio = await anyio.to_thread.run_sync(self._decode, audio_b64, param)
        if isinstance(backend, OptionsBackend) and audio.size * backend.fps < SAMPLE_RATE:
            raise InvalidRequest(
                f"{param}: audio shorter than one video frame ({1000 / backend.fps:g} ms)",
                param=param,
                code="audio_too_short",
            )
        found: Avatar = await anyio.to_thread.run_sync(lambda: self.registry.get(avatar_id, param="avatar"))
        rate = fps or found.track.fps or self.settings.fps
        return await self.queue.run(self._render, backend, found, audio, rate, options)

    @staticmethod
    def _check_options(backend: AnimationBackend, fps: float | None, options: RenderOptions) -> None:
        """A fixed-rate mode refuses another fps; a mode without options refuses any (never silently ignored)."""
        if isinstance(backend, OptionsBackend):
            if fps is not None and fps != backend.fps:
                raise InvalidRequest(
                    f"this inference_mode renders at {backend.fps:g} fps only; omit fps or send {backend.fps:g}",
                    param="fps",
                    code="fps_fixed",
                )
            return
        given = options.given()
        if given:
            raise InvalidRequest(
                f"{', '.join(given)}: only the SadTalker modes take these options",
                param=given[0],
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
        options: RenderOptions,
    ) -> Rendered:
        """Blocking: render into the store's partial file inside this request's own temp folder."""
        video_id, partial = self.store.reserve()
        try:
            with tempfile.TemporaryDirectory(prefix="animation-") as workdir:
                if isinstance(backend, OptionsBackend):
                    result = backend.render_avatar(
                        avatar.info.id, avatar.track, audio, out_path=partial, workdir=Path(workdir), options=options
                    )
                else:
                    result = backend.render(avatar.track, audio, out_path=partial, fps=fps, workdir=Path(workdir))
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
