"""`avatarchat`: the version, the serve and download tables, and the dispatch of up and ask."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from cli.main import DOWNLOADS, SERVICES, build_parser, main


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "cli.main", "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout.startswith("avatarchat ")


def test_serve_parses_services_and_overrides() -> None:
    for service in SERVICES:
        args = build_parser().parse_args(["serve", service, "--port", "7100"])
        assert (args.service, args.port, args.host) == (service, 7100, None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "nosuch"])


def test_every_service_module_has_an_app_factory() -> None:
    for name, module in SERVICES.items():
        assert callable(importlib.import_module(module).create_app), name


def test_every_download_target_exists() -> None:
    for component, target in DOWNLOADS.items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), component


def test_download_offline_names_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("AVATARCHAT_OFFLINE", "1")
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("LLM_MODEL_ID", "Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(FileNotFoundError, match="avatarchat download llm"):
        main(["download", "llm"])


@pytest.mark.parametrize("command", ["up", "ask"])
def test_up_and_ask_run_their_modules(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module(f"cli.{command}")
    seen: list[argparse.Namespace] = []

    def run(args: argparse.Namespace) -> int:
        seen.append(args)
        return 7

    monkeypatch.setattr(module, f"run_{command}", run)
    argv = ["ask", "--text", "hi"] if command == "ask" else ["up", "--no-ui"]
    assert main(argv) == 7
    assert [args.command for args in seen] == [command]


@pytest.mark.parametrize(
    ("service", "variables", "niceness"), [("llm", {}, 10), ("tts", {}, 0), ("llm", {"LLM_NICE": "3"}, 3)]
)
def test_serve_takes_the_services_share_of_the_cores(
    service: str, variables: dict[str, str], niceness: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    import cli.main as main_module

    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    calls: list[int] = []
    monkeypatch.setattr(main_module.os, "nice", calls.append)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    main_module.serve(service, None, None)
    assert calls == ([niceness] if niceness else [])
