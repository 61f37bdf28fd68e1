"""The ASR service app: `create_app()` builds it; models load in the lifespan, off the event loop."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import anyio.to_thread
from fastapi import FastAPI

from comps.asr.backends.base import AsrBackend
from comps.asr.backends.registry import load_backend
from comps.asr.languages import normalize_language
from comps.asr.routes import router
from comps.asr.settings import AsrSettings
from comps.core.app import create_service_app
from comps.core.limits import InferenceQueue
from comps.core.settings import load_settings

logger = logging.getLogger(__name__)

DESCRIPTION = "Whisper speech recognition: OPEA /v1/asr and OpenAI /v1/audio/transcriptions"


def _version() -> str:
    try:
        return version("avatarchat")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(settings: AsrSettings | None = None, backend: AsrBackend | None = None) -> FastAPI:
    """Build the ASR app.

    Args:
        settings: the service settings; read from the environment (`ASR_*`) when None.
        backend: an already loaded backend (tests pass one); when None the lifespan loads the
            backend named by `ASR_BACKEND`.
    """
    settings = settings or load_settings(AsrSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = backend if backend is not None else await anyio.to_thread.run_sync(load_backend, settings)
        # A bad ASR_LANGUAGE fails start-up rather than every request.
        app.state.default_language = normalize_language(
            settings.default_language, supported=loaded.languages, param="ASR_LANGUAGE"
        )
        app.state.backend = loaded
        app.state.queue = InferenceQueue(concurrency=settings.max_concurrency, max_waiting=settings.max_queue)
        logger.info("asr ready: %s (%s)", loaded.model_name, settings.backend)
        app.state.readiness.set_ready()
        yield

    app = create_service_app(
        name="asr", description=DESCRIPTION, version=_version(), settings=settings, lifespan=lifespan
    )
    app.include_router(router)
    return app
