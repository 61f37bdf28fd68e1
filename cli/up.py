"""`avatarchat up`: every service, the gateway (and the UI) on this machine, readiness-gated, stopped cleanly.

First the preflight (`cli/preflight.py`): every weight file (downloaded where allowed), ffmpeg and
the ports, and one table of what is missing instead of four services failing. Each service runs as
its own `avatarchat serve <name>` process (its models load in parallel with the others', and a
crash stays contained); the gateway starts once all four answer `/ready`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType

import httpx

from cli.preflight import preflight, print_table
from comps.animation.settings import AnimationSettings
from comps.asr.settings import AsrSettings
from comps.core.settings import ServiceSettings, load_settings
from comps.llm.settings import LlmSettings
from comps.tts.settings import TtsSettings
from gateway.settings import GatewaySettings
from ui.settings import UiSettings

logger = logging.getLogger(__name__)

# service -> its settings class; the port each listens on comes from there.
SETTINGS: dict[str, type[ServiceSettings]] = {
    "asr": AsrSettings,
    "llm": LlmSettings,
    "tts": TtsSettings,
    "animation": AnimationSettings,
}
# The services share the machine's cores while an answer streams: OpenMP threads that spin-wait for
# work steal the cores the others need (16 s of stalls instead of 0.8 s on 2 cores, every service
# spinning), so the helpers' threads sleep while they wait. Not the animation service's: its threads
# meet after every layer, and put to sleep there each time, with the LLM busy beside it, Wav2Lip made
# 10.7 frames/s instead of 14.0 (2 AMD EPYC cores; OpenMP's default spins ~0.1 ms, then sleeps).
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}
SPINNING = frozenset({"animation"})


def process_env(service: str) -> dict[str, str]:
    """The environment `avatarchat up` adds for one service's process (the variables already set win)."""
    return {} if service in SPINNING else dict(PASSIVE)

# Loading every model on a laptop CPU (first run: from the cache) takes minutes, not hours.
READY_TIMEOUT_S = 900.0
POLL_S = 0.5
STOP_GRACE_S = 15.0


@dataclass
class Child:
    """One running service process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]

    def ready_url(self, host: str) -> str:
        return f"http://{host}:{self.port}/ready"


class Stack:
    """The processes started so far, and a stop flag set by Ctrl-C / SIGTERM."""

    def __init__(self, host: str) -> None:
        self.host = host
        # Services listening on every interface are still reached on the loopback.
        self.connect_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        self.children: list[Child] = []
        self.stop = threading.Event()

    def start(self, name: str, port: int, env: dict[str, str] | None = None) -> Child:
        command = [sys.executable, "-m", "cli.main", "serve", name, "--host", self.host, "--port", str(port)]
        logger.info("starting %s on port %d", name, port)
        child = Child(name, port, subprocess.Popen(command, env={**process_env(name), **os.environ, **(env or {})}))
        self.children.append(child)
        return child

    def wait_ready(self, children: list[Child]) -> bool:
        """Poll `/ready` of each child until all answer 200; False if one exits, time runs out or we are stopped."""
        pending = {child.name: child for child in children}
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while pending and not self.stop.is_set():
                for name, child in list(pending.items()):
                    if child.process.poll() is not None:
                        logger.error("%s exited with code %s while starting", name, child.process.returncode)
                        return False
                    try:
                        status = client.get(child.ready_url(self.connect_host)).status_code
                        if status == 404:  # a page without /ready (the UI) is ready once it serves "/"
                            status = client.get(child.ready_url(self.connect_host).removesuffix("ready")).status_code
                        if status == 200:
                            logger.info("%s is ready on port %d", name, child.port)
                            del pending[name]
                    except httpx.HTTPError:
                        pass  # not listening yet
                if time.monotonic() > deadline:
                    logger.error("not ready after %.0f s: %s", READY_TIMEOUT_S, ", ".join(pending))
                    return False
                self.stop.wait(POLL_S)
        return not pending

    def watch(self) -> int:
        """Block until stopped (0) or until a child dies (1)."""
        while not self.stop.wait(POLL_S):
            for child in self.children:
                if child.process.poll() is not None:
                    logger.error("%s exited with code %s; stopping everything", child.name, child.process.returncode)
                    return 1
        return 0

    def shutdown(self) -> None:
        """SIGTERM every child (gateway first), then kill what is still running after the grace period."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %.0f s; killing it", child.name, STOP_GRACE_S)
                child.process.kill()
                child.process.wait()


def _gateway_env(stack: Stack, ports: dict[str, int]) -> dict[str, str]:
    env = {}
    for name, port in ports.items():
        env[f"GATEWAY_{name.upper()}_HOST"] = stack.connect_host
        env[f"GATEWAY_{name.upper()}_PORT"] = str(port)
    return env


def run_up(args: argparse.Namespace) -> int:
    """Start asr, llm, tts and animation, then the gateway, then the UI; stop them all on Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s up: %(message)s")
    stack = Stack(args.host)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stack.stop.set()

    problems = preflight(host=args.host, fetch=True, ui=not args.no_ui)
    if problems:
        print_table(problems, sys.stderr)
        return 1
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ports = {name: load_settings(settings).port for name, settings in SETTINGS.items()}
        services = [stack.start(name, port) for name, port in ports.items()]
        if not stack.wait_ready(services):
            return 0 if stack.stop.is_set() else 1
        gateway_port = load_settings(GatewaySettings).port
        gateway = stack.start("gateway", gateway_port, _gateway_env(stack, ports))
        if not stack.wait_ready([gateway]):
            return 0 if stack.stop.is_set() else 1
        ui_port = None if args.no_ui else load_settings(UiSettings).port
        if ui_port is not None:
            ui = stack.start("ui", ui_port, {"UI_GATEWAY_URL": f"http://{stack.connect_host}:{gateway_port}"})
            if not stack.wait_ready([ui]):
                return 0 if stack.stop.is_set() else 1
        where = f"http://{stack.connect_host}:{gateway_port}/v1/avatarchatbot"
        page = f", page at http://{stack.connect_host}:{ui_port}" if ui_port is not None else ""
        logger.info("ready: gateway at %s%s (Ctrl-C stops everything)", where, page)
        return stack.watch()
    finally:
        stack.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
