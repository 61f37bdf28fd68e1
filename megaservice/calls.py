"""One hop to one node: body encoding, per-attempt timeout, status check, retries, SSE decoding."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from comps.core.errors import InvalidRequest, ServiceError
from comps.core.request_id import outgoing_hooks
from comps.core.sse import UnreadableEvent, parse_sse
from comps.core.upstream import contract_error, deadline_error, in_band_error, status_error, transport_error
from megaservice.asgi import StreamingASGITransport
from megaservice.service import MicroService
from megaservice.transport import AiohttpTransport


def build_client(
    services: list[MicroService], *, connect_timeout_s: float = 5.0, max_connections: int = 256
) -> httpx.AsyncClient:
    """One shared client; every in-process node's app is mounted at its `http://<name>.in-process` address.

    Remote hops go through aiohttp's pool (see `megaservice.transport`). Only the connect timeout is
    set here: each node's own timeout bounds a whole attempt.
    """
    mounts: dict[str, httpx.AsyncBaseTransport] = {
        service.base_url: StreamingASGITransport(service.app) for service in services if service.app is not None
    }
    return httpx.AsyncClient(
        transport=AiohttpTransport(connect_timeout_s=connect_timeout_s, max_connections=max_connections),
        mounts=mounts,
        timeout=httpx.Timeout(None, connect=connect_timeout_s),
        trust_env=False,
        event_hooks=outgoing_hooks(),
    )


def encode_body(service: MicroService, request: Any) -> Any:
    """The JSON body for `request`: a model is dumped (None left out); a dict is checked against the contract."""
    if isinstance(request, dict) and service.request_model is not None:
        try:
            request = service.request_model.model_validate(request)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise InvalidRequest(f"{service.name}: {param}: {first['msg']}", param=param) from exc
    if isinstance(request, BaseModel):
        return request.model_dump(mode="json", exclude_none=True)
    return request


def decode_body(service: MicroService, data: Any) -> Any:
    """The typed answer: validated into the node's response model when it has one."""
    if service.response_model is None:
        return data
    try:
        return service.response_model.model_validate(data)
    except ValidationError as exc:
        raise contract_error(service.name, str(exc.errors()[0]["msg"])) from exc


class Caller:
    """Makes the hops of every node through one client, with retries for retryable errors only."""

    def __init__(self, client: httpx.AsyncClient, *, backoff_s: float, max_backoff_s: float) -> None:
        """Use `client`; a retry waits `backoff_s * 2**(attempt-1)` (or Retry-After), at most `max_backoff_s`."""
        self.client = client
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s

    def _delay(self, attempt: int, error: ServiceError) -> float:
        wait = error.retry_after if error.retry_after is not None else self.backoff_s * 2 ** (attempt - 1)
        return min(wait, self.max_backoff_s)

    async def unary(self, service: MicroService, request: Any, on_attempt: Callable[[], None]) -> Any:
        """POST `request`; return the typed answer. Retries while the error is retryable and attempts remain."""
        body = encode_body(service, request)
        attempt = 0
        while True:
            attempt += 1
            on_attempt()
            try:
                return await self._unary_once(service, body)
            except ServiceError as exc:
                if not exc.retryable or attempt > service.retries:
                    raise
                await asyncio.sleep(self._delay(attempt, exc))

    async def _unary_once(self, service: MicroService, body: Any) -> Any:
        try:
            async with asyncio.timeout(service.timeout_s):
                response = await self.client.post(service.http_url, json=body, headers=service.headers)
        except TimeoutError as exc:
            raise deadline_error(service.name, service.timeout_s) from exc
        except httpx.HTTPError as exc:
            raise transport_error(service.name, service.url, exc) from exc
        if not response.is_success:
            raise status_error(service.name, response, response.content)
        try:
            data = response.json()
        except ValueError as exc:
            raise contract_error(service.name, f"not JSON: {response.text[:200]!r}") from exc
        return decode_body(service, data)

    async def stream(
        self,
        service: MicroService,
        request: Any,
        emit: Callable[[Any], None],
        on_attempt: Callable[[], None],
    ) -> None:
        """POST `request` and `emit` each decoded SSE item in order; retried only before the first item."""
        body = encode_body(service, request)
        attempt = 0
        while True:
            attempt += 1
            on_attempt()
            emitted = 0

            def counted(item: Any) -> None:
                nonlocal emitted
                emitted += 1
                emit(item)

            try:
                await self._stream_once(service, body, counted)
                return
            except ServiceError as exc:
                if emitted or not exc.retryable or attempt > service.retries:
                    raise
                await asyncio.sleep(self._delay(attempt, exc))

    async def _stream_once(self, service: MicroService, body: Any, emit: Callable[[Any], None]) -> None:
        assert service.stream_decoder is not None
        try:
            async with asyncio.timeout(service.timeout_s):
                async with self.client.stream("POST", service.http_url, json=body, headers=service.headers) as response:
                    if not response.is_success:
                        raise status_error(service.name, response, await response.aread())
                    async for event in parse_sse(response.aiter_lines()):
                        if event.error is not None:
                            raise in_band_error(service.name, event.error)
                        try:
                            item = service.stream_decoder(event.data)
                        except (KeyError, IndexError, TypeError, ValueError) as exc:
                            raise contract_error(service.name, f"undecodable event: {exc!r}") from exc
                        if item is not None:
                            emit(item)
        except UnreadableEvent as exc:
            raise contract_error(service.name, str(exc)) from exc
        except TimeoutError as exc:
            raise deadline_error(service.name, service.timeout_s) from exc
        except httpx.HTTPError as exc:
            raise transport_error(service.name, service.url, exc) from exc
