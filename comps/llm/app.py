"""The LLM service: OpenAI `POST /v1/chat/completions` (JSON or server-sent events) and `GET /v1/models`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request, Response

from comps.core.app import create_service_app, require_ready
from comps.core.disconnect import CLIENT_CLOSED, ClientDisconnected, unless_disconnected
from comps.core.settings import load_settings
from comps.core.sse import SSE_CONTENT, sse_response
from comps.llm.backends.base import ChatBackend
from comps.llm.backends.openai_compat import open_openai_backend
from comps.llm.chat import chunk_events, to_completion, to_generation
from comps.llm.schemas import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList
from comps.llm.settings import LlmSettings

logger = logging.getLogger(__name__)

VERSION = "0.1.0"

BackendFactory = Callable[[LlmSettings], AbstractAsyncContextManager[ChatBackend]]


def _transformers(settings: LlmSettings) -> AbstractAsyncContextManager[ChatBackend]:
    # Imported here so the openai backend never loads torch.
    from comps.llm.backends.transformers import open_transformers_backend

    return open_transformers_backend(settings)


BACKENDS: dict[str, BackendFactory] = {"transformers": _transformers, "openai": open_openai_backend}
"""LLM_BACKEND → a context manager opening the backend for the service's lifespan."""


def create_app(settings: LlmSettings | None = None, backend: ChatBackend | None = None) -> FastAPI:
    """Build the LLM service.

    Args:
        settings: the service settings; read from the environment when None.
        backend: a ready backend (tests); when None the lifespan opens the one LLM_BACKEND names.
    """
    settings = settings or load_settings(LlmSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if backend is None:
                app.state.backend = await stack.enter_async_context(BACKENDS[settings.backend](settings))
            else:
                app.state.backend = backend
            app.state.readiness.set_ready()
            yield

    app = create_service_app(
        name="llm",
        description="OpenAI-compatible chat completions (local transformers model or remote vLLM/TGI/Ollama)",
        version=VERSION,
        settings=settings,
        lifespan=lifespan,
    )

    @app.post(
        "/v1/chat/completions",
        tags=["llm"],
        response_model=None,
        responses={200: {"model": ChatCompletion, "content": SSE_CONTENT, "description": "JSON, or events"}},
    )
    async def chat_completions(body: ChatCompletionRequest, http: Request) -> ChatCompletion | Response:
        """Answer a conversation; with `stream: true` as `chat.completion.chunk` server-sent events."""
        require_ready(app)
        chat: ChatBackend = app.state.backend
        request = to_generation(body, system_prompt=settings.system_prompt)
        if not body.stream:
            # A client that leaves stops the generation (as a closed stream does).
            try:
                result = await unless_disconnected(http, lambda: chat.complete(request))
            except ClientDisconnected:
                logger.info("client left before the answer was ready; generation stopped")
                return Response(status_code=CLIENT_CLOSED)
            return to_completion(result, model=chat.model_name)
        pieces = chat.stream(request)
        # Take the first piece before answering: a full queue, a context overflow or an upstream
        # refusal is still a proper HTTP status; after the first byte it would travel in-band.
        try:
            first = await anext(pieces)
        except BaseException:
            close = getattr(pieces, "aclose", None)
            if close is not None:
                await close()
            raise
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse_response(chunk_events(first, pieces, model=chat.model_name, include_usage=include_usage))

    @app.get("/v1/models", tags=["llm"])
    async def models() -> ModelList:
        """The served model."""
        require_ready(app)
        chat: ChatBackend = app.state.backend
        return ModelList(data=[ModelCard(id=chat.model_name, max_model_len=chat.max_model_len)])

    return app
