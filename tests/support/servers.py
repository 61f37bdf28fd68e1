"""Serve an ASGI app with uvicorn on a free loopback port in a background thread, for tests that need a URL."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn


class Served:
    """`with Served(app) as served:` — started and `/ready` before the block, stopped after it."""

    def __init__(self, app: Any, *, ready_path: str = "/ready", ready_timeout_s: float = 300.0, **config: Any) -> None:
        """`config`: more `uvicorn.Config` settings (e.g. the WebSocket keepalive's `ws_ping_interval`)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", **config)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.ready_path = ready_path
        self.ready_timeout_s = ready_timeout_s

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread died while starting")
            try:
                if httpx.get(f"{self.url}{self.ready_path}", timeout=1, trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"not ready in time: {self.url}")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
