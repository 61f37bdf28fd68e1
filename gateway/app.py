"""The gateway app: the AvatarChatbot megaservice behind `/v1/avatarchatbot`, plus videos and avatars."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import anyio.to_thread
from fastapi import FastAPI

from comps.core.app import create_service_app
from comps.core.settings import load_settings
from comps.core.vad import SileroVad
from gateway import proxy, routes
from gateway.admission import Admission
from gateway.live import routes as live_routes
from gateway.live.sessions import LiveSessions
from gateway.readiness import downstream_not_ready
from gateway.settings import GatewaySettings
from megaservice.avatarchatbot import STAGES, AvatarChatbot, stage_node


def _version() -> str:
    try:
        return version("avatarchat")
    except PackageNotFoundError:
        return "0+unknown"


def remote_chatbot(settings: GatewaySettings) -> AvatarChatbot:
    """The megaservice reaching the four services at the configured hosts and ports, sending each its key."""
    nodes = {
        stage: dataclasses.replace(
            stage_node(
                stage,
                (getattr(settings, f"{stage}_host"), getattr(settings, f"{stage}_port")),
                timeout_s=getattr(settings, f"{stage}_timeout_s"),
                retries=settings.retries,
            ),
            api_key=settings.stage_key(stage),
        )
        for stage in STAGES
    }
    return AvatarChatbot(
        nodes, stream_concurrency=settings.stream_concurrency, connect_timeout_s=settings.connect_timeout_s
    )


def create_app(settings: GatewaySettings | None = None, orchestrator: AvatarChatbot | None = None) -> FastAPI:
    """Build the gateway.

    Args:
        settings: the gateway's settings; from the environment when None.
        orchestrator: an AvatarChatbot to use (tests pass one with in-process services); by default one
            is built in the lifespan from the settings and closed on shutdown.
    """
    config = settings or load_settings(GatewaySettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chatbot = orchestrator or remote_chatbot(config)
        app.state.chatbot = chatbot
        app.state.admission = Admission(
            concurrency=config.max_concurrency, max_waiting=config.max_queue, retry_after_s=5.0, what="gateway"
        )
        app.state.readiness.dependencies = lambda: downstream_not_ready(chatbot)
        vad = await anyio.to_thread.run_sync(SileroVad.load) if config.live_max_sessions else None
        try:
            async with anyio.create_task_group() as sessions:
                app.state.live = LiveSessions(settings=config, chatbot=chatbot, vad=vad, group=sessions)
                app.state.readiness.set_ready()
                try:
                    yield
                finally:
                    app.state.live.close_all()  # each session closes its connection as it ends
        finally:
            if orchestrator is None:
                await chatbot.aclose()

    app = create_service_app(
        name="avatarchatbot",
        description="AvatarChatbot megaservice: speech or text in, a lip-synced talking-avatar video out",
        version=_version(),
        settings=config,
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    app.include_router(proxy.router)
    app.include_router(live_routes.router)
    return app
