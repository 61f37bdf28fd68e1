"""OPEA's own `opea-comps` ServiceOrchestrator (in its own venv) runs end to end against our real services."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.animation_http import check_speech_video
from support.models import speak_wav, word_error_rate

from comps.core.audio import decode_audio

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
OPEA_VENV = REPO / ".venv-opea"  # git-ignored; created on first use, reused afterwards
SCRIPT = Path(__file__).with_name("opea_megaservice.py")
QUESTION = "What is the weather like today?"


@pytest.fixture(scope="session")
def opea_python() -> Path:
    """Python of a venv holding `opea-comps` from PyPI (its top-level `comps` would shadow ours here)."""
    python = OPEA_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(OPEA_VENV)], check=True, timeout=300)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "opea-comps"], capture_output=True, text=True, timeout=1200
        )
        assert done.returncode == 0, f"pip install opea-comps failed:\n{done.stderr[-3000:]}"
    return python


def test_opea_megaservice_runs_end_to_end_against_our_services(
    opea_python: Path, real_services: dict[str, Any], tmp_path: Path
) -> None:
    config = {stage: server.port for stage, server in real_services.items()}
    config.update(audio_b64=base64.b64encode(speak_wav(QUESTION)).decode(), max_tokens=8)
    with tempfile.TemporaryDirectory() as elsewhere:  # so `import comps` finds opea-comps, not this checkout
        done = subprocess.run(
            [str(opea_python), "-P", str(SCRIPT), json.dumps(config)],
            cwd=elsewhere, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    results = {name.split("/")[0]: value for name, value in answer["results"].items()}  # OPEA names "asr/MicroService"
    assert answer["leaf"].startswith("animation")
    assert word_error_rate(QUESTION, results["asr"]["asr_result"]) <= 0.25
    assert results["llm"]["choices"][0]["message"]["content"].strip()
    wav = base64.b64decode(results["tts"]["tts_result"])
    assert wav[:4] == b"RIFF"
    video = results["animation"]
    assert video["video_path"].endswith(".mp4")
    fetched = httpx.get(f"{real_services['animation'].url}/v1/videos/{video['id']}", timeout=60, trust_env=False)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "video/mp4"
    assert fetched.content == Path(video["video_path"]).read_bytes()  # the id serves the file the answer names
    mp4 = tmp_path / "answer.mp4"
    mp4.write_bytes(fetched.content)
    check_speech_video(mp4, seconds=decode_audio(wav, sample_rate=16_000).size / 16_000)  # the TTS answer's length
