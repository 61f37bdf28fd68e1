"""Proxy to any OpenAI-compatible server (vLLM, TGI, Ollama) over the process's shared httpx client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from comps.core.limits import Admission
from comps.core.request_id import outgoing_hooks
from comps.core.sse import UnreadableEvent, parse_sse
from comps.core.upstream import contract_error, in_band_error, status_error, transport_error
from comps.llm.backends.base import FinishReason, Generation, GenerationRequest, StreamPiece, TokenUsage
from comps.llm.settings import LlmSettings

logger = logging.getLogger(__name__)

STAGE = "llm upstream"
CREDENTIAL = "LLM_API_KEY"


class OpenAIBackend:
    """Chat completions answered by an upstream OpenAI-compatible server."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        base_url: str,
        upstream_model: str,
        name: str,
        max_concurrency: int,
        max_queue: int,
    ) -> None:
        """Proxy to `base_url` (ending in /v1) with `client`, asking for `upstream_model`, answering as `name`."""
        self._client = client
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._upstream_model = upstream_model
        self._name = name
        self._admission = Admission(concurrency=max_concurrency, max_waiting=max_queue)

    @property
    def model_name(self) -> str:
        """The model name answers carry."""
        return self._name

    @property
    def max_model_len(self) -> int | None:
        """Unknown: the upstream enforces its own context."""
        return None

    def body(self, request: GenerationRequest, *, stream: bool) -> dict[str, Any]:
        """The upstream request: every field the caller set, passed through unchanged."""
        body: dict[str, Any] = {
            "model": self._upstream_model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": stream,
        }
        body.update(request.sampling_fields())
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def complete(self, request: GenerationRequest) -> Generation:
        """One upstream call; its answer mapped to ours."""
        async with self._admission.slot():
            try:
                response = await self._client.post(self._url, json=self.body(request, stream=False))
            except httpx.HTTPError as exc:
                raise transport_error(STAGE, self._url, exc) from exc
            if response.status_code >= 400:
                raise status_error(STAGE, response, response.content, credential=CREDENTIAL)
            try:
                data = response.json()
                choice = data["choices"][0]
                text = choice["message"].get("content") or ""
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                raise contract_error(STAGE, f"unreadable answer {response.text[:200]!r}") from exc
            return Generation(text=text, finish_reason=_finish(choice.get("finish_reason")), usage=_usage(data))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamPiece]:
        """Upstream server-sent chunks passed through as pieces; an upstream error event raises."""
        async with self._admission.slot():
            try:
                async with self._client.stream("POST", self._url, json=self.body(request, stream=True)) as response:
                    if response.status_code >= 400:
                        raise status_error(STAGE, response, await response.aread(), credential=CREDENTIAL)
                    finish: FinishReason = "stop"
                    usage: TokenUsage | None = None
                    async for event in parse_sse(response.aiter_lines()):
                        if event.error is not None:
                            raise in_band_error(STAGE, event.error)
                        if not isinstance(event.data, dict):
                            raise contract_error(STAGE, f"unreadable stream event {event.data!r:.200}")
                        usage = _usage(event.data) or usage
                        for choice in event.data.get("choices") or []:
                            content = (choice.get("delta") or {}).get("content")
                            if content:
                                yield StreamPiece(content)
                            if choice.get("finish_reason"):
                                finish = _finish(choice["finish_reason"])
                    yield StreamPiece("", finish_reason=finish, usage=usage)
            except UnreadableEvent as exc:
                raise contract_error(STAGE, f"unreadable stream event {exc.data[:200]!r}") from exc
            except httpx.HTTPError as exc:
                raise transport_error(STAGE, self._url, exc) from exc


def _finish(value: object) -> FinishReason:
    return "length" if value == "length" else "stop"


def _usage(data: dict[str, Any]) -> TokenUsage | None:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None
    try:
        return TokenUsage(prompt_tokens=int(usage["prompt_tokens"]), completion_tokens=int(usage["completion_tokens"]))
    except (KeyError, TypeError, ValueError):
        return None


@asynccontextmanager
async def open_openai_backend(settings: LlmSettings) -> AsyncIterator[OpenAIBackend]:
    """The shared httpx client for the service's lifespan, and the backend using it."""
    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    async with httpx.AsyncClient(timeout=timeout, headers=headers, event_hooks=outgoing_hooks()) as client:
        yield OpenAIBackend(
            client=client,
            base_url=settings.api_base,
            upstream_model=settings.model_id,
            name=settings.model_name,
            max_concurrency=settings.max_concurrency,
            max_queue=settings.max_queue,
        )
