"""`POST /v1/realtime`: an SDP offer in, the SDP answer out (OpenAI's Realtime WebRTC shape); `DELETE` ends it."""

from __future__ import annotations

import json

from fastapi import APIRouter, Path, Query, Request, Response

from comps.core.errors import InvalidRequest
from gateway.live.sessions import LiveOptions, LiveSessions

router = APIRouter(tags=["live"])

MAX_OFFER_BYTES = 64 * 1024  # an offer is a few kB; the gateway's own body limit applies first
_ID = r"^[0-9a-f]{32}$"


def _sessions(request: Request) -> LiveSessions:
    live: LiveSessions = request.app.state.live
    return live


async def _offer(request: Request) -> str:
    """The offer's SDP: the body as `application/sdp` (or text), or JSON `{"type": "offer", "sdp"}`."""
    body = await request.body()
    if len(body) > MAX_OFFER_BYTES:
        raise InvalidRequest(f"the SDP offer is over {MAX_OFFER_BYTES} bytes", code="bad_sdp", param="sdp")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = body.decode()
        if kind == "application/json":
            data = json.loads(text)
            offer = isinstance(data, dict) and data.get("type", "offer") == "offer"
            if not offer or not isinstance(data.get("sdp"), str):
                raise InvalidRequest('expected {"type": "offer", "sdp": "..."}', code="bad_sdp", param="sdp")
            text = data["sdp"]
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest(f"the SDP offer is not readable: {exc}", code="bad_sdp", param="sdp") from exc
    if not text.lstrip().startswith("v=0"):
        raise InvalidRequest("the body is not an SDP offer (it starts with v=0)", code="bad_sdp", param="sdp")
    return text


@router.post(
    "/v1/realtime",
    status_code=201,
    response_class=Response,
    responses={201: {"content": {"application/sdp": {"schema": {"type": "string"}}}, "description": "the SDP answer"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/sdp": {"schema": {"type": "string"}}}}},
)
async def realtime(
    request: Request,
    avatar: str | None = Query(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
    voice: str | None = Query(default=None, max_length=200),
) -> Response:
    """Start a live conversation over WebRTC: send the microphone, receive the avatar's video and speech.

    The offer must carry an audio track (the microphone) and should ask to receive one audio and one
    video track; a data channel it opens carries the session's JSON events (`gateway.live.events`).
    The answer's `Location` names the session, which `DELETE` ends. Every session is taken: 503 with
    Retry-After.
    """
    live = _sessions(request)
    live.check()
    session_id, answer = await live.open(await _offer(request), LiveOptions(avatar=avatar, voice=voice))
    return Response(
        answer, status_code=201, media_type="application/sdp", headers={"Location": f"/v1/realtime/{session_id}"}
    )


@router.delete("/v1/realtime/{session_id}", status_code=204, response_class=Response)
async def end_realtime(request: Request, session_id: str = Path(pattern=_ID)) -> Response:
    """End a live session."""
    _sessions(request).close(session_id)
    return Response(status_code=204)
