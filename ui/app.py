"""The UI process: the Gradio page, the media it plays (proxied from the gateway) and the shared service routes."""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import gradio as gr
import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from comps.core.app import create_service_app
from comps.core.errors import InvalidRequest, ServiceError, UpstreamError, class_for_status, error_class
from comps.core.responses import ClosingStreamingResponse
from comps.core.settings import load_settings
from ui.client import GatewayClient, GatewayError
from ui.page import Page, build_blocks
from ui.settings import UiSettings

VERSION = "0.1.0"
VIDEO_ID = re.compile(r"[0-9a-f]{32}")  # the animation service's ids: uuid4().hex
MAX_OFFER_BYTES = 64 * 1024  # the gateway's bound on an SDP offer (gateway.live.routes)
AVATAR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # the gateway's pattern for ids


def as_service_error(exc: GatewayError) -> ServiceError:
    """The gateway's refusal, answered by the UI with the gateway's message, type and status."""
    cls = error_class(exc.kind or "") or (class_for_status(exc.status) if exc.status else UpstreamError)
    return cls(exc.message, status=exc.status)


def add_media_routes(app: FastAPI, gateway: GatewayClient) -> None:
    """`GET /answer/{video_id}` and `GET /avatar/{avatar_id}/image`: the page's media from its own origin."""

    @app.get("/answer/{video_id}", tags=["media"], response_class=StreamingResponse)
    async def answer_video(video_id: str) -> StreamingResponse:
        """The answer's video as the gateway streams it: a growing fragmented MP4 while it is made, then whole."""
        if not VIDEO_ID.fullmatch(video_id):
            raise InvalidRequest("a video id is 32 lowercase hex characters", param="video_id", code="bad_video_id")
        chunks = gateway.video_stream(video_id)
        try:
            first = await anext(chunks, b"")  # the gateway's answer (or refusal) before our status line goes out
        except GatewayError as exc:
            raise as_service_error(exc) from exc

        async def body() -> AsyncIterator[bytes]:
            # A failure from here on can only cut the response short: the browser's reader sees it end early.
            try:
                yield first
                async for chunk in chunks:
                    yield chunk
            finally:
                await chunks.aclose()

        # no-store: while the video is made these bytes are a prefix of it, not the video.
        return ClosingStreamingResponse(body(), media_type="video/mp4", headers={"Cache-Control": "no-store"})

    @app.get("/avatar/{avatar_id}/image", tags=["media"], response_class=Response)
    async def avatar_image(avatar_id: str) -> Response:
        """The avatar's preview still: the player's poster before the first answer."""
        if not AVATAR_ID.fullmatch(avatar_id):
            raise InvalidRequest("not an avatar id", param="avatar_id", code="bad_avatar_id")
        try:
            png = await gateway.avatar_image(avatar_id)
        except GatewayError as exc:
            raise as_service_error(exc) from exc
        return Response(png, media_type="image/png")


def add_live_routes(app: FastAPI, gateway: GatewayClient) -> None:
    """`POST /live/offer` and `DELETE /live/session/{id}`: the Live tab's signalling, from the page's own origin.

    Only the SDP goes through here; the media flow directly between the browser and the gateway.
    """

    @app.post(
        "/live/offer",
        tags=["live"],
        status_code=201,
        response_class=Response,
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/sdp": {"schema": {"type": "string"}}}}
        },  # noqa: E501
    )
    async def live_offer(request: Request, avatar: str | None = None) -> Response:
        """The browser's SDP offer to the gateway (`POST /v1/realtime`); its answer back, `Location` kept."""
        if avatar is not None and not AVATAR_ID.fullmatch(avatar):
            raise InvalidRequest("not an avatar id", param="avatar", code="bad_avatar_id")
        body = await request.body()
        if not body.strip() or len(body) > MAX_OFFER_BYTES:
            # Refused here, not forwarded: an offer is a few kB of text (the gateway checks what it says).
            raise InvalidRequest(f"send an SDP offer of at most {MAX_OFFER_BYTES} bytes", param="sdp", code="bad_sdp")
        try:
            answer, location = await gateway.live_offer(body.decode("utf-8", "replace"), avatar=avatar)
        except GatewayError as exc:
            raise as_service_error(exc) from exc
        return Response(answer, status_code=201, media_type="application/sdp", headers={"Location": location})

    @app.delete("/live/session/{session_id}", tags=["live"], status_code=204, response_class=Response)
    async def live_end(session_id: str) -> Response:
        """End the page's live session."""
        if not VIDEO_ID.fullmatch(session_id):
            raise InvalidRequest("a session id is 32 lowercase hex characters", param="session_id", code="bad_id")
        try:
            await gateway.live_end(session_id)
        except GatewayError as exc:
            raise as_service_error(exc) from exc
        return Response(status_code=204)


def create_app(settings: UiSettings | None = None, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """Build the UI app; `transport` lets a test reach an in-process gateway."""
    settings = settings or load_settings(UiSettings)
    gateway = GatewayClient(
        base_url=settings.gateway_url,
        timeout_s=settings.request_timeout_s,
        api_key=settings.service_api_key,
        transport=transport,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with gateway:  # one connection pool for the app's lifetime, shared by every handler
            app.state.readiness.set_ready()
            yield

    # The page is for browsers, which cannot send AVATARCHAT_API_KEY: the UI holds it for its calls to the gateway.
    app = create_service_app(
        name="ui",
        description="AvatarChatbot web page",
        version=VERSION,
        settings=settings,
        lifespan=lifespan,
        serves_page=True,
    )
    add_media_routes(app, gateway)
    add_live_routes(app, gateway)  # both before the page: Gradio is mounted at "/" and would take every path after it
    work_dir = settings.work_dir or Path(tempfile.gettempdir()) / "avatarchat-ui"
    page = Page(settings=settings, client=gateway, work_dir=work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    mounted: FastAPI = gr.mount_gradio_app(app, build_blocks(page), path="/", allowed_paths=[str(work_dir)])
    return mounted
