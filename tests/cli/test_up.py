"""`avatarchat up` machinery: readiness polling, a child dying while starting, clean shutdown."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

from cli import up
from cli.up import Child, Stack

# A real HTTP server that is not ready at first: /ready answers 503 twice, then 200.
SERVER = textwrap.dedent(
    """
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    calls = {"n": 0}
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            calls["n"] += 1
            ready = self.path == "/ready" and calls["n"] > 2
            self.send_response(200 if ready else 503)
            self.end_headers()
        def log_message(self, *args):
            pass
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spawn(stack: Stack, name: str, code: str, *args: str) -> Child:
    port = _free_port()
    child = Child(name, port, subprocess.Popen([sys.executable, "-c", code, str(port), *args]))
    stack.children.append(child)
    return child


def test_waits_for_ready_then_shuts_children_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(up, "POLL_S", 0.05)
    stack = Stack("0.0.0.0")
    assert stack.connect_host == "127.0.0.1"
    child = _spawn(stack, "asr", SERVER)
    try:
        assert stack.wait_ready([child]) is True
    finally:
        stack.shutdown()
    assert child.process.returncode is not None


def test_a_child_exiting_while_starting_fails_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(up, "POLL_S", 0.05)
    stack = Stack("127.0.0.1")
    child = _spawn(stack, "llm", "raise SystemExit(3)")
    try:
        assert stack.wait_ready([child]) is False
    finally:
        stack.shutdown()
    assert child.process.returncode == 3


def test_stop_flag_ends_the_wait_and_the_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(up, "POLL_S", 0.05)
    stack = Stack("127.0.0.1")
    child = _spawn(stack, "tts", "import time; time.sleep(600)")
    stack.stop.set()
    try:
        assert stack.wait_ready([child]) is False
        assert stack.watch() == 0
    finally:
        stack.shutdown()
    assert child.process.returncode is not None


def test_gateway_is_pointed_at_the_services_actual_ports() -> None:
    stack = Stack("0.0.0.0")
    env = up._gateway_env(stack, {"asr": 17066, "llm": 19000, "tts": 17055, "animation": 19066})
    assert env["GATEWAY_ASR_HOST"] == "127.0.0.1" and env["GATEWAY_ASR_PORT"] == "17066"
    assert env["GATEWAY_ANIMATION_PORT"] == "19066" and env["GATEWAY_LLM_PORT"] == "19000"


def test_helpers_threads_sleep_while_they_wait_and_the_animations_spin_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    started: dict[str, dict[str, str]] = {}

    class Recorded:
        def __init__(self, command: list[str], env: dict[str, str]) -> None:
            started[command[command.index("serve") + 1]] = env

    monkeypatch.setattr(up.subprocess, "Popen", Recorded)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    stack = Stack("127.0.0.1")
    for name in ("asr", "llm", "tts", "animation", "gateway"):
        stack.start(name, _free_port())
    policies = {name: env.get("OMP_WAIT_POLICY") for name, env in started.items()}
    assert policies == {"asr": "PASSIVE", "llm": "PASSIVE", "tts": "PASSIVE", "animation": None, "gateway": "PASSIVE"}
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the operator's own setting wins
    stack.start("llm", _free_port())
    assert started["llm"]["OMP_WAIT_POLICY"] == "ACTIVE"
