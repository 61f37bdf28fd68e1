"""A typed client of the gateway: ask (streamed), avatars, videos (whole or live); errors carry the server's words."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
from pydantic import SecretStr, ValidationError

from comps.core.answer_events import AnswerEvent, Error, decode_event
from comps.core.auth import bearer
from comps.core.request_id import outgoing_hooks
from comps.core.sse import UnreadableEvent, parse_sse

_SUFFIX = "/v1/avatarchatbot"


class GatewayError(Exception):
    """The gateway refused or failed; `message` is what it said, shown to the person as is."""

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None) -> None:
        """Keep the server's message, status and error type."""
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class Avatar:
    """One registered avatar."""

    id: str
    name: str
    kind: str


@dataclass(frozen=True)
class Question:
    """What the person asked and how the answer should look."""

    audio_b64: str | None = None
    text: str | None = None
    avatar: str | None = None
    inference_mode: str | None = None
    fps: float | None = None
    voice: str | None = None
    history: tuple[tuple[str, str], ...] = ()

    def payload(self) -> dict[str, Any]:
        """The gateway request body (absent options are left to the server's defaults)."""
        body: dict[str, Any] = {"audio": self.audio_b64, "text": self.text}
        for key in ("avatar", "inference_mode", "fps", "voice"):
            value = getattr(self, key)
            if value not in (None, ""):
                body[key] = value
        turns = []
        for asked, answered in self.history:
            turns += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
        if turns:
            body["messages"] = turns
        return {k: v for k, v in body.items() if v is not None}


def _error_from(response: httpx.Response) -> GatewayError:
    if response.status_code in (401, 403):  # the UI's own key is wrong: not the person's mistake
        return GatewayError(
            f"the gateway refused the UI's API key (HTTP {response.status_code}): give the UI the gateway's "
            "AVATARCHAT_API_KEY",
            kind="upstream",
        )
    try:
        error = response.json()["error"]
        return GatewayError(str(error["message"]), status=response.status_code, kind=error.get("type"))
    except (ValueError, KeyError, TypeError):
        return GatewayError(
            f"gateway answered {response.status_code}: {response.text[:300]}", status=response.status_code
        )


class GatewayClient:
    """Talks to one gateway; open it once with `async with` (the UI app's lifespan) and share it."""

    def __init__(
        self,
        *,
        base_url: str,
        timeout_s: float,
        api_key: SecretStr | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Point at `base_url` (the gateway root), sending `api_key` on every call; the pool opens in `__aenter__`."""
        self._headers = bearer(api_key)
        root = base_url.rstrip("/")
        self.base_url = root[: -len(_SUFFIX)] if root.endswith(_SUFFIX) else root
        self._timeout = httpx.Timeout(timeout_s, connect=10.0)
        self._transport = transport
        self._opened: httpx.AsyncClient | None = None

    @property
    def _client(self) -> httpx.AsyncClient:
        if self._opened is None:
            raise RuntimeError("GatewayClient used before it was opened (async with)")
        return self._opened

    async def __aenter__(self) -> GatewayClient:
        self._opened = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._headers,
            timeout=self._timeout,
            transport=self._transport,
            event_hooks=outgoing_hooks(),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._opened is not None:
            await self._opened.aclose()
            self._opened = None

    async def avatars(self) -> list[Avatar]:
        """The registered avatars."""
        response = await self._send("GET", "/v1/avatars")
        body: Any = response.json()
        items: list[dict[str, Any]] = body.get("avatars", []) if isinstance(body, dict) else body
        return [
            Avatar(id=str(a["id"]), name=str(a.get("name") or a["id"]), kind=str(a.get("kind", "image"))) for a in items
        ]

    async def upload_avatar(self, path: Path) -> Avatar:
        """Register an image or short video as a new avatar."""
        with path.open("rb") as handle:
            response = await self._send("POST", "/v1/avatars", files={"file": (path.name, handle.read())})
        a = response.json()
        return Avatar(id=str(a["id"]), name=str(a.get("name") or a["id"]), kind=str(a.get("kind", "image")))

    async def ask(self, question: Question) -> AsyncIterator[AnswerEvent]:
        """Stream the answer's typed events (`comps.core.answer_events`); an `error` event becomes a GatewayError."""
        try:
            async with self._client.stream("POST", "/v1/avatarchatbot/stream", json=question.payload()) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error_from(response)
                async for sse in parse_sse(response.aiter_lines()):
                    event = decode_event(sse)
                    if isinstance(event, Error):
                        raise GatewayError(event.error.message, kind=event.error.type)
                    if event is not None:  # an event newer than this client: skipped
                        yield event
        except (UnreadableEvent, ValidationError) as exc:
            raise GatewayError(f"the gateway at {self.base_url} sent an unreadable event: {exc}") from exc
        except httpx.HTTPError as exc:
            raise GatewayError(f"the gateway at {self.base_url} cannot be reached: {exc}") from exc

    async def download(self, url: str, target: Path) -> Path:
        """Fetch a video (absolute URL or a path on the gateway) into `target`."""
        async with self._client.stream("GET", url) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _error_from(response)
            async with await anyio.open_file(target, "wb") as out:
                async for chunk in response.aiter_bytes():
                    await out.write(chunk)
        return target

    async def video_stream(self, video_id: str) -> AsyncGenerator[bytes]:
        """The bytes of `GET /v1/videos/{video_id}` as the gateway sends them (a live fMP4 while it is made).

        The request goes out on the first `__anext__`, so a refusal raises there, before any byte;
        a connection lost later raises from the iteration that meets it.
        """
        started = False
        try:
            async with self._client.stream("GET", f"/v1/videos/{video_id}") as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error_from(response)
                started = True
                async for chunk in response.aiter_bytes():
                    yield chunk
        except httpx.HTTPError as exc:
            trouble = "broke off the video stream" if started else "cannot be reached"
            raise GatewayError(f"the gateway at {self.base_url} {trouble}: {exc}") from exc

    async def avatar_image(self, avatar_id: str) -> bytes:
        """The avatar's preview still (PNG)."""
        response = await self._send("GET", f"/v1/avatars/{avatar_id}/image")
        return response.content

    async def live_offer(self, sdp: str, *, avatar: str | None) -> tuple[str, str]:
        """Start a live session (`POST /v1/realtime`): the gateway's SDP answer and the session's path."""
        params = {"avatar": avatar} if avatar else {}
        response = await self._send(
            "POST", "/v1/realtime", content=sdp, params=params, headers={"Content-Type": "application/sdp"}
        )
        return response.text, response.headers.get("location", "")

    async def live_end(self, session_id: str) -> None:
        """End a live session (`DELETE /v1/realtime/{id}`)."""
        await self._send("DELETE", f"/v1/realtime/{session_id}")

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GatewayError(f"the gateway at {self.base_url} cannot be reached: {exc}") from exc
        if response.status_code >= 400:
            raise _error_from(response)
        return response


async def avatar_preview(client: GatewayClient, avatar: Avatar, target: Path) -> Path | None:
    """Download an avatar's preview image for the gallery; None when the server has none."""
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        await client.download(f"/v1/avatars/{avatar.id}/image", partial)
    except GatewayError:
        await anyio.Path(partial).unlink(missing_ok=True)
        return None
    await anyio.Path(partial).replace(target)
    return target
