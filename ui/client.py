"""A typed client of the gateway: ask (streamed), avatars, videos. Errors carry the server's own message."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx

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


@dataclass(frozen=True)
class StreamEvent:
    """One server-sent event from `/v1/avatarchatbot/stream`."""

    event: str
    data: dict[str, Any] = field(default_factory=dict)


def _error_from(response: httpx.Response) -> GatewayError:
    try:
        error = response.json()["error"]
        return GatewayError(str(error["message"]), status=response.status_code, kind=error.get("type"))
    except (ValueError, KeyError, TypeError):
        return GatewayError(
            f"gateway answered {response.status_code}: {response.text[:300]}", status=response.status_code
        )


class GatewayClient:
    """Talks to one gateway; open it with `async with`."""

    def __init__(self, *, base_url: str, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        """Point at `base_url` (the gateway root)."""
        root = base_url.rstrip("/")
        self.base_url = root[: -len(_SUFFIX)] if root.endswith(_SUFFIX) else root
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=httpx.Timeout(timeout_s, connect=10.0), transport=transport
        )

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

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

    async def ask(self, question: Question) -> AsyncIterator[StreamEvent]:
        """Stream the answer's events; an `error` event becomes a GatewayError."""
        try:
            async with self._client.stream("POST", "/v1/avatarchatbot/stream", json=question.payload()) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error_from(response)
                name = "message"
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].strip()
                        if data == "[DONE]":
                            return
                        parsed = json.loads(data)
                        if name == "error":
                            error = parsed.get("error", {})
                            raise GatewayError(str(error.get("message", data)), kind=error.get("type"))
                        yield StreamEvent(event=name, data=parsed)
                        name = "message"
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
