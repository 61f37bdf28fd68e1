"""The optional bearer key (`AVATARCHAT_API_KEY`): every service checks it on HTTP and WebSocket; callers send it.

What stays open with a key set, and why (docs/security.md):

- the probes `/health`, `/ready`, `/v1/health_check` and Prometheus' `/metrics`: compose, Kubernetes and
  scrapers call them without headers, and they tell nothing about anyone's data;
- the API description `/openapi.json`, `/docs`, `/redoc`: the schema of an open-source project;
- `GET`/`HEAD /v1/videos/{id}`: a browser's `<video src>` cannot send a header, and the id (32 random
  hex digits, uuid4) is the capability: only who was given the answer knows it.

Everything else, the WebSocket `/v1/animation/stream` included, answers 401 without the key. The key
travels only in `Authorization: Bearer <key>`, never in a query string (which ends up in logs).
"""

from __future__ import annotations

import hmac
import re

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from comps.core.errors import AuthenticationError, ServiceError, error_response

OPEN_PATHS = frozenset(
    {"/health", "/ready", "/v1/health_check", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
_VIDEO = re.compile(r"/v1/videos/[^/]+")  # one path segment: `/v1/videos/a/../../x` is not a video
_READ = frozenset({"GET", "HEAD"})
CLOSE_POLICY = 1008  # WebSocket close code "policy violation": the handshake of a client without the key


def bearer(key: SecretStr | str | None) -> dict[str, str]:
    """The header that carries `key` on a request ({} without a key)."""
    if key is None:
        return {}
    value = key.get_secret_value() if isinstance(key, SecretStr) else key
    return {"Authorization": f"Bearer {value}"}


def is_open(method: str, path: str) -> bool:
    """Whether `method path` is answered without the key (see the module docstring)."""
    return path in OPEN_PATHS or (method in _READ and _VIDEO.fullmatch(path) is not None)


def check_authorization(header: bytes | None, key: bytes) -> AuthenticationError | None:
    """None when `header` (the raw `Authorization` value) carries `key`; else the 401 to answer.

    The comparison takes the same time whatever the key presented (`hmac.compare_digest`).
    """
    if header is None:
        return AuthenticationError(
            "this service needs an API key: send 'Authorization: Bearer <key>' (the key is AVATARCHAT_API_KEY)",
            code="missing_api_key",
        )
    scheme, _, token = header.partition(b" ")
    if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), key):
        return AuthenticationError("the API key is wrong (Authorization: Bearer <key>)", code="invalid_api_key")
    return None


def _route_path(scope: Scope) -> str:
    """The path the router matches (an app mounted under a root path sees its own paths)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _authorization(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            header: bytes = value
            return header
    return None


class ApiKeyAuth:
    """Pure ASGI middleware: HTTP requests and WebSocket handshakes without the key are refused with 401."""

    def __init__(self, app: ASGIApp, *, key: SecretStr) -> None:
        """Wrap `app`; `key` is the one accepted bearer key."""
        self.app = app
        self._key = key.get_secret_value().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass allowed requests through; answer the others with the 401 envelope."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        if scope["type"] == "http" and is_open(method, _route_path(scope)):
            await self.app(scope, receive, send)
            return
        error = check_authorization(_authorization(scope), self._key)
        if error is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await error_response(error)(scope, receive, send)
        else:
            await refuse_handshake(error, scope, receive, send)


async def refuse_handshake(error: ServiceError, scope: Scope, receive: Receive, send: Send) -> None:
    """Refuse a WebSocket before it opens, with the error's status and envelope.

    Where the server cannot send an HTTP answer to a handshake (an in-process socket, an older server),
    it is a close with code 1008 and the message as its reason.
    """
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client went away first
    if "websocket.http.response" in scope.get("extensions", {}):
        response = error_response(error)
        await send({"type": "websocket.http.response.start", "status": response.status_code,
                    "headers": response.raw_headers})  # fmt: skip
        await send({"type": "websocket.http.response.body", "body": response.body})
        return
    await send({"type": "websocket.close", "code": CLOSE_POLICY, "reason": error.message[:120]})  # 123 bytes at most
