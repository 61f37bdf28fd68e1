"""Schemathesis over the gateway's OpenAPI, its stages the in-process fakes of conftest: no 5xx, conforming answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from schemathesis import Case
from support.fuzz import fuzz, schema_of, send_valid, settings

from gateway.app import create_app
from gateway.settings import GatewaySettings

schema = schema_of(create_app(GatewaySettings()))


@pytest.fixture
def app(stack: Any, chatbot_for: Callable[..., Any]) -> Iterator[FastAPI]:
    @stack.apps["animation"].middleware("http")
    async def refuse_upload_without_type(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Any:
        # conftest's fake upload reads the content type unguarded (a 500); the real service refuses with a 400.
        if request.method == "POST" and request.url.path == "/v1/avatars" and "content-type" not in request.headers:
            error = {"message": "send the image as multipart/form-data", "type": "invalid_request"}
            return JSONResponse({"error": error | {"code": "validation_error", "param": "file"}}, 400)
        return await call_next(request)

    chatbot = chatbot_for(stack)
    yield create_app(GatewaySettings(), orchestrator=chatbot)
    anyio.run(chatbot.aclose)


@schema.parametrize()
@settings(max_examples=25)
def test_fuzz(case: Case, app: FastAPI) -> None:
    fuzz(case, app)


def test_answers_conform(app: FastAPI) -> None:
    send_valid(schema, app, "POST", "/v1/avatarchatbot", body={"text": "Hi?"})
    detailed = send_valid(schema, app, "POST", "/v1/avatarchatbot", body={"text": "Hi?", "detailed": True}).json()
    send_valid(schema, app, "POST", "/v1/avatarchatbot/stream", body={"text": "Hi?"})
    send_valid(schema, app, "GET", "/v1/videos/{video_id}", path_parameters={"video_id": detailed["id"]})
    send_valid(schema, app, "GET", "/v1/avatars")


def test_every_operation_has_its_own_id() -> None:
    # One route serving two methods gave both operations one operationId (invalid OpenAPI; FastAPI warned).
    ids = [op["operationId"] for ops in schema.raw_schema["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)), sorted(ids)
