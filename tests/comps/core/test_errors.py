from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from comps.core.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    Timeout,
    Unavailable,
    UpstreamError,
    install_error_handlers,
)


def test_categories_map_to_status_and_retryable() -> None:
    assert InvalidRequest("x").status == 400 and not InvalidRequest("x").retryable
    assert NotFound("x").status == 404
    assert PayloadTooLarge("x").status == 413
    assert Unavailable("x").status == 503 and Unavailable("x").retryable
    assert Timeout("x").status == 504 and Timeout("x").retryable
    assert UpstreamError("x").status == 502 and UpstreamError("x").retryable
    assert UpstreamError("x", status=404).status == 404


def test_envelope_shape() -> None:
    body = InvalidRequest("bad voice", code="unknown_voice", param="voice").to_body()
    assert body == {
        "error": {
            "message": "bad voice",
            "type": "invalid_request",
            "code": "unknown_voice",
            "param": "voice",
            "request_id": None,  # outside a request
        }
    }


class Item(BaseModel):
    name: str
    count: int


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/items")
    async def items(item: Item) -> Item:
        return item

    @app.get("/busy")
    async def busy() -> None:
        raise Unavailable("queue full", retry_after=3)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    return app


@pytest.mark.anyio
async def test_handlers_render_every_failure_in_the_envelope() -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        bad = await client.post("/items", json={"name": "a", "count": "many"})
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_request"
        assert bad.json()["error"]["param"] == "count"

        not_json = await client.post("/items", content=b"{not json", headers={"content-type": "application/json"})
        assert not_json.status_code == 400

        no_body = await client.post("/items")
        assert no_body.status_code == 400
        assert no_body.json()["error"]["message"] == "the request body is missing: send a JSON object"

        missing = await client.get("/nowhere")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"

        busy = await client.get("/busy")
        assert busy.status_code == 503 and busy.headers["retry-after"] == "3"

        boom = await client.get("/boom")
        assert boom.status_code == 500
        assert boom.json()["error"]["type"] == "internal"


def test_service_error_is_an_exception_with_message() -> None:
    err: ServiceError = NotFound("no such avatar", param="avatar")
    assert str(err) == "no such avatar"
