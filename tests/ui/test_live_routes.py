"""The UI's live signalling routes refuse what is not an offer or an id themselves, never forwarding it."""

from __future__ import annotations

import httpx
import pytest

from ui.app import create_app
from ui.settings import UiSettings


@pytest.mark.anyio
async def test_bad_offers_and_ids_are_400s_in_the_envelope_without_reaching_the_gateway() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"forwarded to the gateway: {request.method} {request.url}")

    app = create_app(UiSettings(gateway_url="http://gateway.test"), transport=httpx.MockTransport(unreachable))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
        for method, path, body, code in [
            ("POST", "/live/offer", b"", "bad_sdp"),
            ("POST", "/live/offer", b"   ", "bad_sdp"),
            ("POST", "/live/offer", b"v=0\r\n" * 20_000, "bad_sdp"),
            ("POST", "/live/offer?avatar=../etc", b"v=0\r\n", "bad_avatar_id"),
            ("DELETE", "/live/session/not-a-session", b"", "bad_id"),
        ]:
            response = await client.request(method, path, content=body)
            assert response.status_code == 400, (path, response.text)
            assert response.json()["error"]["code"] == code


@pytest.mark.anyio
async def test_with_a_key_the_page_stays_open_and_the_ui_sends_the_key_to_the_gateway() -> None:
    sent: list[str | None] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("authorization"))
        return httpx.Response(200, content=b"\x89PNG", headers={"content-type": "image/png"})

    settings = UiSettings(gateway_url="http://gateway.test", service_api_key="ui-k3y")
    app = create_app(settings, transport=httpx.MockTransport(gateway))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
        page = await client.get("/")  # a browser sends no key
        image = await client.get("/avatar/default/image")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert image.status_code == 200 and image.content == b"\x89PNG"
    assert sent == ["Bearer ui-k3y"]
