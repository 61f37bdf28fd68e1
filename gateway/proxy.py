"""Videos and avatars served through the gateway, so one host answers everything (Range passed through)."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask

from comps.core.errors import ServiceError, error_response
from comps.core.responses import ClosingStreamingResponse
from comps.core.upstream import deadline_error, status_error, transport_error
from gateway.settings import GatewaySettings
from megaservice.avatarchatbot import AvatarChatbot

router = APIRouter(tags=["media"])

STAGE = "animation"
CREDENTIAL = "AVATARCHAT_API_KEY"  # the key the gateway sends to the animation service, named in a 401's 502
# Request headers a media download needs; response headers a player needs.
_FORWARD_REQUEST = ("range", "if-range", "if-none-match", "if-modified-since", "accept")
_FORWARD_RESPONSE = (
    "content-type", "content-length", "content-range", "accept-ranges", "etag", "last-modified",
    "cache-control", "content-disposition",
)  # fmt: skip
_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


def _animation_url(request: Request, path: str) -> str:
    chatbot: AvatarChatbot = request.app.state.chatbot
    return chatbot.nodes[STAGE].base_url + path


def _forwarded(headers: httpx.Headers, names: tuple[str, ...]) -> dict[str, str]:
    return {name: headers[name] for name in names if name in headers}


# One route per method, so each OpenAPI operation gets its own operationId (a shared one is invalid).
@router.get("/v1/videos/{video_id}", response_class=Response)
@router.head("/v1/videos/{video_id}", response_class=Response)
async def video(request: Request, video_id: str = Path(pattern=_ID)) -> Response:
    """Stream a rendered video from the animation service; `Range` requests answer 206 with the slice."""
    chatbot: AvatarChatbot = request.app.state.chatbot
    url = _animation_url(request, f"/v1/videos/{video_id}")
    headers = {**_forwarded(httpx.Headers(request.headers), _FORWARD_REQUEST), **chatbot.nodes[STAGE].headers}
    upstream_request = chatbot.client.build_request(request.method, url, headers=headers)
    try:
        upstream = await chatbot.client.send(upstream_request, stream=True)
    except httpx.HTTPError as exc:
        raise transport_error(STAGE, url, exc) from exc
    if upstream.status_code >= 400:
        body = await upstream.aread()
        await upstream.aclose()
        error = status_error(STAGE, upstream, body, credential=CREDENTIAL)
        if upstream.status_code == 416:  # the envelope, with the length a client needs for its next Range
            refused = error_response(error)
            refused.headers.update(_forwarded(upstream.headers, ("content-range",)))
            return refused
        raise error
    return ClosingStreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=_forwarded(upstream.headers, _FORWARD_RESPONSE),
        background=BackgroundTask(upstream.aclose),
    )


async def _relay(request: Request, path: str) -> Response:
    """Forward the request (body and content type) to the animation service; answer with its reply."""
    chatbot: AvatarChatbot = request.app.state.chatbot
    settings: GatewaySettings = request.app.state.settings
    url = _animation_url(request, path)
    headers = {**_forwarded(httpx.Headers(request.headers), ("content-type", "accept")), **chatbot.nodes[STAGE].headers}
    try:
        async with asyncio.timeout(settings.animation_timeout_s):
            upstream = await chatbot.client.request(
                request.method, url, content=await request.body(), headers=headers, params=request.query_params
            )
    except TimeoutError as exc:
        raise deadline_error(STAGE, settings.animation_timeout_s) from exc
    except httpx.HTTPError as exc:
        raise transport_error(STAGE, url, exc) from exc
    if upstream.status_code >= 400:
        error: ServiceError = status_error(STAGE, upstream, upstream.content, credential=CREDENTIAL)
        raise error
    # Content-Length is recomputed: httpx has already decoded any content encoding.
    kept = tuple(name for name in _FORWARD_RESPONSE if name != "content-length")
    return Response(upstream.content, status_code=upstream.status_code, headers=_forwarded(upstream.headers, kept))


@router.delete("/v1/videos/{video_id}", response_class=Response, status_code=204)
async def delete_video(request: Request, video_id: str = Path(pattern=_ID)) -> Response:
    """Remove a rendered video (204), as the animation service answers it: 404 unknown, 409 still rendering."""
    return await _relay(request, f"/v1/videos/{video_id}")


@router.get("/v1/avatars", response_class=Response)
@router.post("/v1/avatars", response_class=Response)
async def avatars(request: Request) -> Response:
    """List the avatars, or upload a new one (forwarded as sent, multipart or JSON)."""
    return await _relay(request, "/v1/avatars")


@router.get("/v1/avatars/{avatar_id}", response_class=Response)
@router.delete("/v1/avatars/{avatar_id}", response_class=Response)
async def avatar(request: Request, avatar_id: str = Path(pattern=_ID)) -> Response:
    """One avatar (or its removal), as the animation service answers it."""
    return await _relay(request, f"/v1/avatars/{avatar_id}")


@router.get("/v1/avatars/{avatar_id}/image", response_class=Response)
async def avatar_image(request: Request, avatar_id: str = Path(pattern=_ID)) -> Response:
    """The avatar's PNG preview (the UI's gallery)."""
    return await _relay(request, f"/v1/avatars/{avatar_id}/image")
