"""Proxy to any OpenAI-compatible server (vLLM, TGI, Ollama) over the process's shared httpx client."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from comps.core.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    Timeout,
    Unavailable,
    Unprocessable,
    UpstreamError,
)
from comps.core.limits import Admission
from comps.llm.backends.base import FinishReason, Generation, GenerationRequest, StreamPiece, TokenUsage
from comps.llm.settings import LlmSettings

logger = logging.getLogger(__name__)

_CLIENT_ERRORS: dict[int, type[ServiceError]] = {404: NotFound, 413: PayloadTooLarge, 422: Unprocessable}


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
        optional: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "top_k": request.top_k,
            "seed": request.seed,
            "presence_penalty": request.presence_penalty,
            "frequency_penalty": request.frequency_penalty,
            "repetition_penalty": request.repetition_penalty,
            "stop": list(request.stop) or None,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    async def complete(self, request: GenerationRequest) -> Generation:
        """One upstream call; its answer mapped to ours."""
        async with self._admission.slot():
            try:
                response = await self._client.post(self._url, json=self.body(request, stream=False))
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from exc
            if response.status_code >= 400:
                raise upstream_error(response.status_code, response.text, response.headers)
            try:
                data = response.json()
                choice = data["choices"][0]
                text = choice["message"].get("content") or ""
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                raise UpstreamError(f"llm upstream sent an unreadable answer: {response.text[:200]!r}") from exc
            return Generation(text=text, finish_reason=_finish(choice.get("finish_reason")), usage=_usage(data))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamPiece]:
        """Upstream server-sent chunks passed through as pieces; an upstream error event raises."""
        async with self._admission.slot():
            try:
                async with self._client.stream("POST", self._url, json=self.body(request, stream=True)) as response:
                    if response.status_code >= 400:
                        text = (await response.aread()).decode("utf-8", "replace")
                        raise upstream_error(response.status_code, text, response.headers)
                    finish: FinishReason = "stop"
                    usage: TokenUsage | None = None
                    event = ""
                    async for line in response.aiter_lines():
                        if line.startswith("event:"):
                            event = line[6:].strip()
                            continue
                        if not line.startswith("data:"):
                            continue
                        payload = line[5:].strip()
                        if payload == "[DONE]":
                            break
                        chunk = _parse_chunk(payload, is_error=event == "error")
                        event = ""
                        usage = _usage(chunk) or usage
                        for choice in chunk.get("choices") or []:
                            content = (choice.get("delta") or {}).get("content")
                            if content:
                                yield StreamPiece(content)
                            if choice.get("finish_reason"):
                                finish = _finish(choice["finish_reason"])
                    yield StreamPiece("", finish_reason=finish, usage=usage)
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from exc

    def _transport_error(self, exc: httpx.HTTPError) -> ServiceError:
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return Timeout(f"llm upstream {self._url} did not answer in time: {type(exc).__name__}")
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return Unavailable(
                f"llm upstream {self._url} is unreachable: {exc}", code="upstream_unreachable", retry_after=5
            )
        return UpstreamError(f"llm upstream {self._url} failed: {type(exc).__name__}: {exc}")


def upstream_error(status: int, text: str, headers: httpx.Headers) -> ServiceError:
    """Map an upstream error answer to ours, keeping its status and message.

    A 4xx keeps its status (the caller's request was refused), except 401/403, which mean our own
    credentials (LLM_API_KEY) are wrong: 502. A 503 stays 503 with Retry-After; other 5xx are 502.
    """
    message = f"llm upstream answered {status}: {_error_message(text)}"
    if status in (401, 403):
        return UpstreamError(message + " (check LLM_API_KEY)", code="upstream_auth")
    if status == 429 or status == 503:
        retry = headers.get("retry-after")
        return Unavailable(message, status=status, retry_after=float(retry) if retry and retry.isdigit() else 2.0)
    if 400 <= status < 500:
        return _CLIENT_ERRORS.get(status, InvalidRequest)(message, status=status, code="upstream_rejected")
    return UpstreamError(message, code="upstream_error")


def _error_message(text: str) -> str:
    """The message of an OpenAI (`{"error": {"message"}}`), TGI (`{"error": str}`) or FastAPI error body."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:500] or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return str(error)[:500]
    return text.strip()[:500]


def _parse_chunk(payload: str, *, is_error: bool) -> dict[str, Any]:
    try:
        chunk = json.loads(payload)
    except ValueError as exc:
        raise UpstreamError(f"llm upstream sent an unreadable stream event: {payload[:200]!r}") from exc
    if not isinstance(chunk, dict):
        raise UpstreamError(f"llm upstream sent an unreadable stream event: {payload[:200]!r}")
    if is_error or "error" in chunk:
        raise UpstreamError(f"llm upstream failed mid-stream: {_error_message(payload)}", code="upstream_error")
    return chunk


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
    async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
        yield OpenAIBackend(
            client=client,
            base_url=settings.api_base,
            upstream_model=settings.model_id,
            name=settings.model_name,
            max_concurrency=settings.max_concurrency,
            max_queue=settings.max_queue,
        )
