"""Small real in-process FastAPI services for orchestrator tests (the node behaviour is set per test)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass
class Toy:
    """One toy service: POST /run answers with `handler(body)`; calls are logged in order."""

    name: str
    handler: Handler
    calls: list[dict[str, Any]] = field(default_factory=list)
    app: FastAPI = field(init=False)

    def __post_init__(self) -> None:
        self.app = FastAPI()

        @self.app.post("/run")
        async def run(request: Request) -> Any:
            body = await request.json()
            self.calls.append(body)
            result = await self.handler(body)
            if isinstance(result, tuple):
                status, payload = result
                return JSONResponse(payload, status_code=status)
            return result

        @self.app.post("/stream")
        async def stream(request: Request) -> StreamingResponse:
            body = await request.json()
            self.calls.append(body)
            items: AsyncIterator[Any] = await self.handler(body)

            async def events() -> AsyncIterator[str]:
                async for item in items:
                    yield f"data: {json.dumps(item)}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture
def toy() -> Callable[[str, Handler], Toy]:
    return Toy


def echo(tag: str) -> Handler:
    """A handler appending `tag` to the body's `path` list."""

    async def handle(body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"path": [*body.get("path", []), tag]}

    return handle


@pytest.fixture
def echo_handler() -> Callable[[str], Handler]:
    return echo
