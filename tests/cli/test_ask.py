"""`avatarchat ask` against a running gateway (served over a real socket), and its argument checks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from cli.ask import run_ask
from cli.main import build_parser
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway.conftest import spoken_wav


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["ask", *argv])


def test_ask_through_a_gateway_writes_the_video_and_reports_each_stage(
    stack: Any, chatbot_for: Any, served: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    question = tmp_path / "question.wav"
    question.write_bytes(b"RIFF....WAVEfmt ")
    output = tmp_path / "out" / "answer.mp4"
    app = create_app(GatewaySettings(), orchestrator=chatbot_for(stack))
    with served(app) as gateway:
        code = run_ask(_args(str(question), "--gateway", gateway.url, "-o", str(output)))
    err = capsys.readouterr().err
    assert code == 0, err
    assert output.read_bytes().startswith(b"\x00\x00\x00\x18ftyp")
    assert output.read_bytes().endswith(spoken_wav("Paris is the capital of France. It lies on the Seine river."))
    for stage in ("asr", "llm", "tts", "animation", "total"):
        assert f"[{stage}]" in err
    assert 'heard "What is the capital of France?"' in err


def test_ask_reports_a_stage_failure_and_exits_1(
    stack: Any, chatbot_for: Any, served: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.fail["llm"] = (503, {"error": {"message": "model loading", "type": "unavailable"}})
    app = create_app(GatewaySettings(), orchestrator=chatbot_for(stack))
    with served(app) as gateway:
        code = run_ask(_args("--text", "hi", "--gateway", gateway.url, "-o", str(tmp_path / "a.mp4")))
    assert code == 1
    assert "error: gateway: llm: model loading" in capsys.readouterr().err
    assert not (tmp_path / "a.mp4").exists()


@pytest.mark.parametrize("argv", [[], ["q.wav", "--text", "hi"], ["missing.wav"]])
def test_ask_needs_exactly_one_existing_question(argv: list[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="avatarchat ask:"):
        run_ask(_args(*[str(tmp_path / a) if a.endswith(".wav") else a for a in argv]))


def test_ask_sends_the_api_key_to_a_keyed_gateway(
    stack: Any, chatbot_for: Any, served: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    app = create_app(GatewaySettings(service_api_key="cli-k3y", live_max_sessions=0), orchestrator=chatbot_for(stack))
    output = tmp_path / "answer.mp4"
    with served(app) as gateway:
        monkeypatch.setenv("AVATARCHAT_API_KEY", "cli-k3y")
        assert run_ask(_args("--text", "hi", "--gateway", gateway.url, "-o", str(output))) == 0
        assert output.read_bytes().startswith(b"\x00\x00\x00\x18ftyp")
        monkeypatch.setenv("AVATARCHAT_API_KEY", "another-key")
        assert run_ask(_args("--text", "hi", "--gateway", gateway.url, "-o", str(tmp_path / "b.mp4"))) == 1
    err = capsys.readouterr().err
    assert "error: gateway: the API key is wrong" in err and "check AVATARCHAT_API_KEY" in err
    assert len(stack.seen["llm"]) == 1  # the refused question went no further than the gateway
