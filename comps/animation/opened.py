"""A `FileResponse` (Range, ETag, HEAD) that reads a file the endpoint has already opened.

Starlette's `FileResponse` opens its path only after it has sent the headers: a file removed in between
(a prune, a DELETE, another replica) would fail the answer half way. Opened first, the file is read to
its end whatever happens to its name, and a missing one is a clean 404 from the endpoint.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import anyio
from fastapi.responses import FileResponse
from starlette.types import Message, Receive, Scope, Send

from comps.core.errors import InvalidRequest, error_response


class OpenedFileResponse(FileResponse):
    """Serve `handle` (opened for reading) as the file at `path`; the handle is closed once the answer is sent."""

    def __init__(self, handle: BinaryIO, path: Path, *, media_type: str) -> None:
        """Take over `handle`; `path` names the file only for the headers (its name is never opened)."""
        super().__init__(path, media_type=media_type, stat_result=os.fstat(handle.fileno()))
        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the answer (whole, a Range, or HEAD's headers), then close the file."""
        # A server's `pathsend` extension would open the path itself: this answer always sends the bytes.
        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != "http.response.pathsend"}
        try:
            await super().__call__({**scope, "extensions": extensions}, receive, _enveloped_refusals(send))
        finally:
            self._handle.close()

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        """Where Starlette opens `self.path`: the file opened before, from its start (one read per answer)."""
        self._handle.seek(0)
        yield anyio.wrap_file(self._handle)


def _enveloped_refusals(send: Send) -> Send:
    """`send`, with Starlette's plain-text refusals of a Range answered in the error envelope instead.

    A malformed Range is Starlette's 400, one past the end its 416; the 416's `Content-Range:
    bytes */<length>` is kept (the client's next Range needs the file's length). Starlette's own text
    says what was wrong, so the refusal is held until its body has come.
    """
    held: list[Message] = []
    text = bytearray()

    async def enveloped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] in (400, 416):
            held.append(message)
        elif held and message["type"] == "http.response.body":
            text.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            start = held[0]
            if start["status"] == 416:
                error = InvalidRequest(
                    "the Range starts past the end of the video", code="range_not_satisfiable", status=416
                )
            else:
                detail = text.decode("utf-8", "replace").strip()
                error = InvalidRequest(f"the Range header is malformed: {detail}", code="bad_range")
            answer = error_response(error)
            kept = [(name, value) for name, value in start["headers"] if name.lower() == b"content-range"]
            await send({**start, "headers": [*answer.raw_headers, *kept]})
            await send({"type": "http.response.body", "body": answer.body, "more_body": False})
        else:
            await send(message)

    return enveloped
