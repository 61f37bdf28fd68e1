"""The animation service app: OPEA's /v1/animation and /v1/wav2lip, avatars, and videos served with HTTP Range."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio.to_thread
from fastapi import FastAPI, File, Form, Request, Response, UploadFile, WebSocket
from fastapi.responses import FileResponse

from comps.animation.avatars import DEFAULT_ID, AvatarInfo, AvatarRegistry
from comps.animation.backends import BACKENDS
from comps.animation.backends.base import AnimationBackend
from comps.animation.backends.networks import load_networks
from comps.animation.detect import RETINAFACE, FaceDetector, HaarDetector, RetinaFaceDetector
from comps.animation.live import follow_file
from comps.animation.opened import OpenedFileResponse
from comps.animation.schemas import (
    AnimationRequest,
    AnimationResponse,
    AvatarList,
    AvatarOut,
    Wav2LipRequest,
    Wav2LipResponse,
)
from comps.animation.service import AnimationService, Rendered
from comps.animation.settings import AnimationSettings
from comps.animation.store import OutputStore
from comps.animation.streaming import serve_stream
from comps.core.app import create_service_app, require_ready
from comps.core.device import resolve_device
from comps.core.errors import InvalidRequest, Unavailable
from comps.core.limits import InferenceQueue
from comps.core.responses import ClosingStreamingResponse
from comps.core.settings import load_settings
from comps.core.weights import resolve_weight

logger = logging.getLogger(__name__)

VERSION = "0.1.0"
PRUNE_EVERY_S = 60.0  # the longest wait between two prunes of the video store when videos expire


def build_detector(settings: AnimationSettings) -> FaceDetector:
    """The configured face detector; RetinaFace's weights are resolved like any checkpoint (never a silent download)."""
    if settings.face_detector == "haar":
        return HaarDetector()
    path = resolve_weight(
        RETINAFACE, explicit=settings.checkpoint_dir, cache_dir=settings.model_cache_dir, offline=settings.offline
    )
    device = "cuda" if settings.device == "cuda" else "cpu"  # detection runs once per avatar: CPU is enough elsewhere
    return RetinaFaceDetector.load(path, device=device)


def load_service(settings: AnimationSettings, backend: AnimationBackend | None) -> AnimationService:
    """Load every enabled mode, the detector, the avatars (the default one detected and analysed now) and the store.

    Blocking. The networks the enabled modes share load first, once; then each mode is built on
    them. The modes that analyse avatars (SadTalker) do so at registration, through the registry.
    """
    if settings.outfile is not None:
        logger.info(
            "OUTFILE=%s is ignored: each video is stored under its own id in %s", settings.outfile, settings.output_dir
        )
    if backend is None:
        networks = load_networks(settings, resolve_device(settings.device))
        backends: dict[str, AnimationBackend] = {mode: BACKENDS[mode](settings, networks) for mode in settings.modes}
    else:
        backends = {settings.inference_mode: backend}
    registry = AvatarRegistry(
        root=settings.avatar_dir,
        detector=build_detector(settings),
        max_frames=settings.avatar_max_frames,
        max_side=settings.avatar_max_side,
        cache_size=settings.max_avatars_cached,
        max_bytes=settings.avatar_max_bytes,
        max_pixels=settings.avatar_max_pixels,
        analyzers=[a for a in (b.capabilities.analyzer for b in backends.values()) if a is not None],
    )
    if settings.face is not None:
        registry.register_default(settings.face)
    store = OutputStore(
        root=settings.output_dir,
        retention=settings.retention,
        ttl_s=settings.video_ttl_s,
        max_bytes=settings.store_max_bytes,
    )
    queue = InferenceQueue(concurrency=settings.max_concurrency, max_waiting=settings.max_queue)
    return AnimationService(settings=settings, backends=backends, registry=registry, store=store, queue=queue)


def create_app(settings: AnimationSettings | None = None, backend: AnimationBackend | None = None) -> FastAPI:
    """Build the animation app.

    Args:
        settings: the service settings; read from the environment when None.
        backend: a loaded backend serving the default mode only (tests); when None, every mode in
            `settings.modes` is loaded at start-up through `BACKENDS`.
    """
    settings = settings or load_settings(AnimationSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info("loading animation modes %s", ", ".join(settings.modes))
        app.state.animation = await anyio.to_thread.run_sync(load_service, settings, backend)
        if settings.stream_rate == "auto":  # measure this CPU's pace before the first stream asks for a rate
            await anyio.to_thread.run_sync(app.state.animation.warm_up)
        app.state.readiness.set_ready()
        async with anyio.create_task_group() as tasks:
            if settings.video_ttl_s > 0:  # count and size are pruned at each commit; age needs a clock
                tasks.start_soon(prune_periodically, app.state.animation.store)
            yield
            tasks.cancel_scope.cancel()
        # In FP8 MEASURE mode the calibration statistics are written when the service stops.
        await anyio.to_thread.run_sync(app.state.animation.finish)

    app = create_service_app(
        name="animation",
        description="Lip-synced talking-head video (Wav2Lip, Wav2Lip-GAN, SadTalker, GFPGAN), OPEA-compatible",
        version=VERSION,
        settings=settings,
        lifespan=lifespan,
    )

    def service(request: Request) -> AnimationService:
        require_ready(request.app)
        animation: AnimationService = request.app.state.animation
        return animation

    def base_url(request: Request) -> str:
        return (settings.public_url or str(request.base_url)).rstrip("/")

    def avatar_out(info: AvatarInfo, request: Request) -> AvatarOut:
        return AvatarOut(
            id=info.id,
            name=info.name,
            kind=info.kind,
            frames=info.frames,
            width=info.width,
            height=info.height,
            fps=info.fps,
            default=info.id == DEFAULT_ID,
            image_url=f"{base_url(request)}/v1/avatars/{info.id}/image",
        )

    def response(rendered: Rendered, request: Request) -> AnimationResponse:
        return AnimationResponse(
            id=rendered.id,
            video_path=str(rendered.path),
            video_url=f"{base_url(request)}/v1/videos/{rendered.id}",
            duration_s=rendered.result.duration_s,
            frames=rendered.result.frames,
            fps=rendered.result.fps,
        )

    @app.post("/v1/animation", tags=["animation"], response_model=AnimationResponse)
    async def animation(body: AnimationRequest, request: Request) -> AnimationResponse:
        """OPEA: base64 speech in, a lip-synced MP4 (H.264 + AAC) out, by id, path and URL."""
        # The request is a SadTalkerOptions (its options are the contract's fields); the mode reads only those.
        rendered = await service(request).animate(
            body.byte_str, avatar=body.avatar, mode=body.inference_mode, fps=body.fps, param="byte_str", options=body
        )
        return response(rendered, request)

    @app.post("/v1/wav2lip", tags=["animation"], response_model=Wav2LipResponse)
    async def wav2lip(body: Wav2LipRequest, request: Request) -> Wav2LipResponse:
        """OPEA's Wav2Lip server: base64 audio in, the video's path out (default avatar and mode)."""
        rendered = await service(request).animate(body.audio, avatar=None, mode=None, fps=None, param="audio")
        return Wav2LipResponse(wav2lip_result=str(rendered.path))

    @app.post("/v1/avatars", tags=["avatars"], status_code=201, response_model=AvatarOut)
    async def register_avatar(
        request: Request,
        file: Annotated[UploadFile, File(description="an image or a short video of one face")],
        name: Annotated[str | None, Form(description="display name; the file name when absent")] = None,
    ) -> AvatarOut:
        """Register an image or short video: its face is detected and analysed once, here; 422 when there is none."""
        animation = service(request)
        if file.size is not None:  # known once the body is parsed: refused before it is read into memory
            animation.registry.check_size(file.size)
        data = await file.read()
        label = name or (file.filename or "").rsplit(".", 1)[0] or None
        avatar = await animation.queue.run(lambda: animation.registry.register(data, name=label))
        return avatar_out(avatar.info, request)

    @app.get("/v1/avatars", tags=["avatars"], response_model=AvatarList)
    async def list_avatars(request: Request) -> AvatarList:
        """Every avatar, the default first."""
        infos = await anyio.to_thread.run_sync(service(request).registry.list)  # reads the shared store
        return AvatarList(avatars=[avatar_out(i, request) for i in infos])

    @app.get("/v1/avatars/{avatar_id}", tags=["avatars"], response_model=AvatarOut)
    async def get_avatar(avatar_id: str, request: Request) -> AvatarOut:
        """One avatar."""
        registry = service(request).registry
        return avatar_out(await anyio.to_thread.run_sync(lambda: registry.info(avatar_id, param="id")), request)

    @app.delete("/v1/avatars/{avatar_id}", tags=["avatars"], status_code=204)
    async def delete_avatar(avatar_id: str, request: Request) -> Response:
        """Remove an uploaded avatar (not `default`)."""
        registry = service(request).registry
        await anyio.to_thread.run_sync(registry.delete, avatar_id)
        return Response(status_code=204)

    @app.get("/v1/avatars/{avatar_id}/image", tags=["avatars"], response_class=Response)
    async def avatar_image(avatar_id: str, request: Request, full: bool = False) -> Response:
        """A PNG of the avatar's first frame: a preview (the UI's gallery), or with `full=true` as it renders."""
        registry = service(request).registry
        png = await anyio.to_thread.run_sync(lambda: registry.preview_png(avatar_id, full=full))
        return Response(content=png, media_type="image/png")

    @app.get("/v1/videos/{video_id}", tags=["videos"], response_class=FileResponse)
    async def video(video_id: str, request: Request) -> Response:
        """A rendered MP4; HTTP Range requests get 206 partial content, so players can seek.

        A video still being streamed (`WS /v1/animation/stream`) is sent as it is made, from its first
        byte to its last (a fragmented MP4, playable while it grows), by this replica or, from the
        shared store, by any other; Range applies once it is complete. A partial file no live render
        holds (a crash's leftover) is never served.
        """
        animation = service(request)
        live = animation.live.get(video_id)
        if live is not None:
            return ClosingStreamingResponse(
                live.chunks(), media_type="video/mp4", headers={"Cache-Control": "no-store"}
            )
        store = animation.store
        partial = await anyio.to_thread.run_sync(store.partial_path, video_id)  # another replica's live render
        if partial is not None:
            return ClosingStreamingResponse(
                follow_file(partial), media_type="video/mp4", headers={"Cache-Control": "no-store"}
            )
        handle = await anyio.to_thread.run_sync(store.open, video_id)
        return OpenedFileResponse(handle, store.final_path(video_id), media_type="video/mp4")

    @app.delete(
        "/v1/videos/{video_id}",
        tags=["videos"],
        status_code=204,
        responses={409: {"description": "the video is still being rendered (`video_in_progress`)"}},
    )
    async def delete_video(video_id: str, request: Request) -> Response:
        """Remove a finished video; 409 while it is still being rendered, 404 when there is none."""
        animation = service(request)
        if video_id in animation.live:
            raise InvalidRequest(
                f"video {video_id} is still being rendered; delete it once it is complete",
                param="id",
                code="video_in_progress",
                status=409,
            )
        await anyio.to_thread.run_sync(animation.store.delete, video_id)
        return Response(status_code=204)

    @app.websocket("/v1/animation/stream")
    async def animation_stream(ws: WebSocket) -> None:
        """Speech in as it is spoken, one growing fragmented MP4 (H.264 + AAC) out (see `comps.animation.streaming`)."""
        await ws.accept()
        if not ws.app.state.readiness.ready:
            await ws.send_json({"type": "error", **Unavailable("models are loading", code="not_ready").to_body()})
            await ws.close(code=1013)
            return
        animation: AnimationService = ws.app.state.animation
        base = (settings.public_url or str(ws.base_url).replace("ws", "http", 1)).rstrip("/")
        await serve_stream(
            ws,
            open_live=lambda start: animation.open_live(start, base_url=base),
            run_thread=animation.queue.run,
            finish=animation.finish_live,
            max_seconds=settings.max_audio_seconds,
            max_frames=settings.max_frames,
        )

    return app


async def prune_periodically(store: OutputStore) -> None:
    """Remove expired videos every tenth of their lifetime (1 to `PRUNE_EVERY_S` seconds), until cancelled."""
    every = min(PRUNE_EVERY_S, max(1.0, store.ttl_s / 10))
    while True:
        await anyio.sleep(every)
        try:
            await anyio.to_thread.run_sync(store.prune)
        except OSError as exc:  # a store that is briefly unreachable: the next round tries again
            logger.warning("pruning the video store failed: %s", exc)
