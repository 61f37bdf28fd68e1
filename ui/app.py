"""The UI process: the Gradio page mounted on the shared service app (health, ready, metrics)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import gradio as gr
import httpx
from fastapi import FastAPI

from comps.core.app import create_service_app
from comps.core.settings import load_settings
from ui.client import GatewayClient
from ui.page import Page, build_blocks
from ui.settings import UiSettings

VERSION = "0.1.0"


def create_app(settings: UiSettings | None = None, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """Build the UI app; `transport` lets a test reach an in-process gateway."""
    settings = settings or load_settings(UiSettings)
    gateway = GatewayClient(base_url=settings.gateway_url, timeout_s=settings.request_timeout_s, transport=transport)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with gateway:  # one connection pool for the app's lifetime, shared by every handler
            app.state.readiness.set_ready()
            yield

    app = create_service_app(
        name="ui", description="AvatarChatbot web page", version=VERSION, settings=settings, lifespan=lifespan
    )
    work_dir = settings.work_dir or Path(tempfile.gettempdir()) / "avatarchat-ui"
    page = Page(settings=settings, client=gateway, work_dir=work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    mounted: FastAPI = gr.mount_gradio_app(app, build_blocks(page), path="/", allowed_paths=[str(work_dir)])
    return mounted
