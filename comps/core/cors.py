"""Cross-origin access: pages on the listed origins (`AVATARCHAT_CORS_ORIGINS`) may call a service; none by default.

HTTP gets Starlette's CORS headers for the listed origins only (`*` only where it is listed, alone).
WebSockets are outside CORS, so a browser page on any site could open one: a handshake whose `Origin`
is neither listed nor the service's own host is refused. Programs send no `Origin` and are not
affected; the key (`comps.core.auth`), where set, applies to everyone.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from comps.core.auth import refuse_handshake
from comps.core.errors import InvalidRequest, error_response

ALLOW_METHODS = ("GET", "HEAD", "POST", "DELETE")
# Besides the CORS-safelisted ones: the key, JSON bodies, our request id, and ranged video reads.
ALLOW_HEADERS = ("Authorization", "Content-Type", "X-Request-ID", "Range", "If-Range")
# What a page may read of an answer: the request id, a live session's Location, back-off and range details.
EXPOSE_HEADERS = ("X-Request-ID", "Location", "Retry-After", "Content-Range", "Accept-Ranges", "WWW-Authenticate")
MAX_AGE_S = 600  # how long a browser may reuse a preflight answer


def install_cors(app: FastAPI, origins: tuple[str, ...], *, websockets: bool = True) -> None:
    """Add CORS for `origins` (normalized by the settings) as the outermost layer; nothing when there are none.

    Outermost, so a preflight (which carries no key) is answered before the key check, and a 401 still
    carries the headers a page needs to read it. No credentials mode: the key is a header, not a cookie.
    `websockets`: also refuse WebSocket handshakes from unlisted pages.
    """
    if websockets:
        app.add_middleware(WebSocketOrigins, origins=origins)
    if origins:
        app.add_middleware(
            EnvelopedCORS,
            allow_origins=list(origins),
            allow_methods=list(ALLOW_METHODS),
            allow_headers=list(ALLOW_HEADERS),
            expose_headers=list(EXPOSE_HEADERS),
            allow_credentials=False,
            max_age=MAX_AGE_S,
        )


class EnvelopedCORS(CORSMiddleware):
    """Starlette's CORS, its refused preflight (origin, method or header not allowed) a 400 in the error envelope."""

    def preflight_response(self, request_headers: Headers) -> Response:
        """The preflight's answer; a refusal names what was refused and the setting that allows origins."""
        answer = super().preflight_response(request_headers)
        if answer.status_code != 400:
            return answer
        refused = bytes(answer.body).decode("utf-8", "replace")  # "Disallowed CORS origin, method, ..."
        error = InvalidRequest(
            f"{refused.replace('Disallowed CORS', 'cross-origin request refused:')} "
            "(the pages allowed are set by AVATARCHAT_CORS_ORIGINS)",
            code="cors_refused",
        )
        enveloped = error_response(error)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                enveloped.headers[name] = value
        return enveloped


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def origin_allowed(origin: str | None, host: str | None, origins: tuple[str, ...]) -> bool:
    """Whether a WebSocket handshake from a page on `origin` to `host` may open (no `Origin`: not a browser)."""
    if origin is None or "*" in origins or origin.lower() in origins:
        return True
    netloc = urlsplit(origin).netloc.lower()
    return bool(netloc) and host is not None and netloc == host.lower()


class WebSocketOrigins:
    """Pure ASGI middleware refusing WebSocket handshakes from pages on other, unlisted origins."""

    def __init__(self, app: ASGIApp, *, origins: tuple[str, ...]) -> None:
        """Wrap `app`; `origins` are the allowed ones (normalized)."""
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass everything but a cross-origin WebSocket handshake."""
        if scope["type"] != "websocket" or origin_allowed(
            _header(scope, b"origin"), _header(scope, b"host"), self.origins
        ):
            await self.app(scope, receive, send)
            return
        error = InvalidRequest(
            "this origin may not open a WebSocket here (AVATARCHAT_CORS_ORIGINS lists the allowed ones)",
            code="origin_not_allowed",
            status=403,
        )
        await refuse_handshake(error, scope, receive, send)
