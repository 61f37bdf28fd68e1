"""The UI process: the Gradio page mounted on the shared service app (health, ready, metrics)."""

from __future__ import annotations

import tempfile
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
    app = create_service_app(
        name="ui", description="AvatarChatbot web page", version=VERSION, settings=settings, lifespan=None
    )
    work_dir = settings.work_dir or Path(tempfile.gettempdir()) / "avatarchat-ui"

    def client() -> GatewayClient:
        return GatewayClient(base_url=settings.gateway_url, timeout_s=settings.request_timeout_s, transport=transport)

    page = Page(settings=settings, client=client, work_dir=work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    mounted: FastAPI = gr.mount_gradio_app(app, build_blocks(page), path="/", allowed_paths=[str(work_dir)])
    return mounted
