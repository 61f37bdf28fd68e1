"""`MicroService`: one node of the graph — where a service lives, what it takes and returns, how it is called."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

import httpx
from pydantic import BaseModel, SecretStr
from starlette.types import ASGIApp

from comps.core.auth import bearer

IN_PROCESS_DOMAIN = "in-process"
"""In-process nodes are addressed as `http://<name>.in-process`; the shared client mounts their app there."""


class ServiceType(StrEnum):
    """What a node does (OPEA's `ServiceType` names, for readers coming from OPEA)."""

    ASR = "asr"
    LLM = "llm"
    TTS = "tts"
    ANIMATION = "animation"
    UNDEFINED = "undefined"


StreamDecoder = Callable[[Any], Any]
"""Turns one server-sent event's JSON `data` into a stream item, or None to skip that event."""


@dataclass(frozen=True, kw_only=True)
class MicroService:
    """A node: a remote HTTP service, or an ASGI app called in-process without sockets.

    Attributes:
        name: unique node name; also the stage named in errors ("asr", "llm", ...).
        host: host name or IP of a remote service.
        port: TCP port of a remote service.
        endpoint: the path posted to, e.g. "/v1/asr".
        service_type: what the node does (informational, as in OPEA).
        use_remote_service: OPEA's flag; a node with `app` is in-process whatever this says.
        app: an ASGI app to call in-process (no sockets) instead of host:port.
        request_model: the pydantic model of the request body; an adapter's dict output is validated with it.
        response_model: the pydantic model of the answer; a 2xx body that does not match is a 502 for the stage.
        stream_decoder: when set, the node answers with server-sent events and emits one item per decoded event.
        timeout_s: seconds for one attempt (for a streaming node: until its stream ends).
        retries: extra attempts after a retryable failure (503, 502, 504, connection refused).
        scheme: "http" or "https" for a remote service.
        api_key: the bearer key sent on every call to the node (HTTP and WebSocket); None sends none.
    """

    name: str
    host: str = "localhost"
    port: int = 8080
    endpoint: str = "/"
    service_type: ServiceType = ServiceType.UNDEFINED
    use_remote_service: bool = True
    app: ASGIApp | None = None
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    stream_decoder: StreamDecoder | None = None
    timeout_s: float = 60.0
    retries: int = 1
    scheme: str = "http"
    api_key: SecretStr | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.endpoint.startswith("/"):
            raise ValueError(f"endpoint of {self.name!r} must start with '/': {self.endpoint!r}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s of {self.name!r} must be positive")
        if self.retries < 0:
            raise ValueError(f"retries of {self.name!r} must be >= 0")

    @property
    def in_process(self) -> bool:
        """Whether calls go to `app` through an ASGI transport."""
        return self.app is not None

    @property
    def base_url(self) -> str:
        """Scheme, host and port (or the in-process address) without the endpoint."""
        if self.app is not None:
            return f"http://{self.name}.{IN_PROCESS_DOMAIN}"
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The full URL the node posts to."""
        return self.base_url + self.endpoint

    @cached_property
    def headers(self) -> dict[str, str]:
        """The headers every call to the node carries: its key, where it has one."""
        return bearer(self.api_key)

    @cached_property
    def http_url(self) -> httpx.URL:
        """`url` parsed once (httpx re-parses a string on every request)."""
        return httpx.URL(self.url)
