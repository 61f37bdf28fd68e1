"""Services as real OS processes (`avatarchat serve <service>` on free loopback ports), for deployment tests.

Each process logs to its own file; a start waits for every process's `/ready` by polling (a process that
exits meanwhile fails the start at once, its log attached); the end sends SIGTERM and kills what lingers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from cli.up import process_env

REPO = Path(__file__).resolve().parents[2]
POLL_S = 0.2
STOP_GRACE_S = 15.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServiceProcess:
    """One `avatarchat serve` process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        return (
            f"--- {self.name} (exit {self.process.poll()}) log tail:\n{self.log.read_text(errors='replace')[-chars:]}"
        )


class ServiceProcesses:
    """`with ServiceProcesses(logs) as processes:` — processes started inside the block are stopped after it."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[ServiceProcess] = []

    def start(self, name: str, service: str, env: dict[str, str], *, port: int | None = None) -> ServiceProcess:
        """Start `avatarchat serve <service>` on `port` (None: a free one), `env` over this process's environment."""
        port = port or free_port()
        log = self.log_dir / f"{name}.log"
        command = [sys.executable, "-m", "cli.main", "serve", service, "--host", "127.0.0.1", "--port", str(port)]
        with log.open("wb") as out:  # the child holds its own copy of the descriptor
            variables = {**os.environ, **process_env(service), **env}
            process = subprocess.Popen(command, env=variables, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        started = ServiceProcess(name, port, process, log)
        self.started.append(started)
        return started

    def wait_ready(self, *services: ServiceProcess, timeout_s: float) -> None:
        """Poll each one's `/ready` until all answer 200.

        Raises:
            AssertionError: one exited, or not all were ready within `timeout_s` (the logs attached).
        """
        pending = list(services)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while pending:
                for service in list(pending):
                    assert service.process.poll() is None, f"{service.name} exited while starting\n{service.log_tail()}"
                    try:
                        if client.get(f"{service.url}/ready").status_code == 200:
                            pending.remove(service)
                    except httpx.HTTPError:
                        pass  # not listening yet
                if not pending:
                    return
                if time.monotonic() > deadline:
                    tails = "\n".join(service.log_tail() for service in pending)
                    raise AssertionError(f"not ready in {timeout_s:g} s\n{tails}")
                time.sleep(POLL_S)

    def __enter__(self) -> ServiceProcesses:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """SIGTERM every process (the last started first), then kill any still running after the grace period."""
        for service in reversed(self.started):
            if service.process.poll() is None:
                service.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for service in reversed(self.started):
            try:
                service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()
