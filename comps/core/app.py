"""The service app factory: health, readiness, OPEA health_check and statistics, metrics, errors, limits, security."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from comps.core.auth import ApiKeyAuth
from comps.core.cors import install_cors
from comps.core.errors import Unavailable, error_response, install_error_handlers
from comps.core.limits import BodySizeLimit
from comps.core.observability import Statistics, configure_logging, observe_requests
from comps.core.settings import ServiceSettings

logger = logging.getLogger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Readiness:
    """Whether the service's models are loaded; `/ready` answers 503 until `set_ready()`.

    A service that needs others (the gateway) sets `dependencies`: once ready itself, `/ready` also
    awaits it and answers 503 with the reason it returns (None: all there).
    """

    def __init__(self) -> None:
        """Start not ready."""
        self.ready = False
        self.reason = "starting: models are loading"
        self.dependencies: Callable[[], Awaitable[str | None]] | None = None

    def set_ready(self) -> None:
        """Models are loaded; traffic may come."""
        self.ready = True
        self.reason = "ready"

    def set_not_ready(self, reason: str) -> None:
        """Stop accepting traffic, saying why."""
        self.ready = False
        self.reason = reason


def create_service_app(
    *,
    name: str,
    description: str,
    version: str,
    settings: ServiceSettings,
    lifespan: Lifespan | None = None,
    serves_page: bool = False,
) -> FastAPI:
    """Build a FastAPI app with everything every service shares.

    Args:
        name: the service title (OPEA's "Service Title"), e.g. "asr".
        description: one line for `/v1/health_check` and the OpenAPI page.
        version: the service version.
        settings: the service's settings; stored on `app.state.settings`.
        lifespan: the service's own start-up/shut-down (load models, then `app.state.readiness.set_ready()`).
        serves_page: a page people's browsers load (the UI): they cannot send the key, so none is asked of
            them (the app holds it for its own calls) and its framework's WebSockets are left to it.
    """

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        if settings.threads is not None:
            limit_threads(settings.threads)

        if lifespan is None:
            app.state.readiness.set_ready()
            yield
            return
        async with lifespan(app):
            yield
        app.state.readiness.set_not_ready("shutting down")

    app = FastAPI(title=f"avatarchat {name}", description=description, version=version, lifespan=run)
    app.state.settings = settings
    app.state.readiness = Readiness()
    app.state.statistics = Statistics(service=name)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.service_api_key is not None and not serves_page:  # before the body is read (comps.core.auth)
        app.add_middleware(ApiKeyAuth, key=settings.service_api_key)
    # Added after those, so outside them: every answer, a refused body's 413 and a 401 included, carries the
    # request id; CORS outermost of all (a preflight carries no key).
    app.middleware("http")(observe_requests(app.state.statistics))
    install_cors(app, settings.cors_origins, websockets=not serves_page)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers. Cheap, never touches a model."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"], response_model=None)
    async def ready() -> dict[str, str] | JSONResponse:
        """Readiness: 200 only once the models are loaded (and, where set, the services this one needs answer)."""
        readiness: Readiness = app.state.readiness
        if not readiness.ready:
            return error_response(Unavailable(readiness.reason, code="not_ready", retry_after=5))
        missing = await readiness.dependencies() if readiness.dependencies is not None else None
        if missing is not None:
            return error_response(Unavailable(missing, code="dependency_not_ready", retry_after=5))
        return {"status": "ready"}

    @app.get("/v1/health_check", tags=["ops"])
    async def health_check() -> dict[str, str]:
        """OPEA's health check body."""
        return {"Service Title": name, "Version": version, "Service Description": description}

    @app.get("/v1/statistics", tags=["ops"])
    async def statistics() -> dict[str, dict[str, float | int | None]]:
        """OPEA's statistics: p50/p99/average latency (seconds) per endpoint over a bounded window."""
        stats: Statistics = app.state.statistics
        return stats.summary()

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus exposition of request counts and latencies, and the event loop's task count."""
        stats: Statistics = app.state.statistics
        stats.tasks.labels(service=stats.service).set(len(asyncio.all_tasks()))
        return PlainTextResponse(generate_latest(stats.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def limit_threads(threads: int) -> None:
    """Cap torch's intra-op threads for this process (a service without torch has none to cap)."""
    if importlib.util.find_spec("torch") is None:
        return
    import torch

    torch.set_num_threads(threads)
    logger.info("torch uses %d thread(s)", threads)


def require_ready(app: FastAPI) -> None:
    """Raise 503 from a handler when the models are not loaded yet."""
    readiness: Readiness = app.state.readiness
    if not readiness.ready:
        raise Unavailable(readiness.reason, code="not_ready", retry_after=5)
