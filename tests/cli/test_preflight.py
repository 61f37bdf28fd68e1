"""The preflight of `avatarchat up` and `avatarchat doctor`: one table of what is missing, never a traceback.

The commands run as a newcomer runs them, as processes, offline, on an empty model cache: the
embedded models (ASR tiny.en, SmolLM2, Piper joe) and the shipped avatar are found with no setting;
only Wav2Lip's weights cannot ship.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.wav2lip_weights import write_checkpoint

from cli.preflight import Problem, print_table

REPO = Path(__file__).resolve().parents[2]
STAGES = ("ASR", "LLM", "TTS", "ANIMATION", "GATEWAY", "UI")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def newcomer_env(cache: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing set but the model cache, offline, and free ports."""
    keep = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG", "TMPDIR")}
    ports = {f"{stage}_PORT": str(free_port()) for stage in STAGES}
    return {**keep, **ports, "MODEL_CACHE_DIR": str(cache), "AVATARCHAT_OFFLINE": "1", **extra}


def avatarchat(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cli.main", *args]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def test_up_offline_without_wav2lip_names_the_file_and_the_command(tmp_path: Path) -> None:
    done = avatarchat("up", "--no-ui", env=newcomer_env(tmp_path))
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "wav2lip.pth" in output and "avatarchat download wav2lip" in output, output
    assert "Traceback" not in output, output
    assert "nothing was started" in output
    # only that: the embedded ASR, LLM and TTS models and the shipped avatar were found
    rows = [line for line in done.stderr.splitlines() if line.startswith("  ") and "service" not in line]
    assert len(rows) == 1 and rows[0].split()[0] == "animation", output


def test_doctor_with_a_wav2lip_checkpoint_finds_everything(tmp_path: Path) -> None:
    env = newcomer_env(tmp_path, CHECKPOINT_PATH=str(write_checkpoint(tmp_path / "wav2lip.pth")))
    done = avatarchat("doctor", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every model, ffmpeg and port is in place" in done.stdout


def test_a_busy_port_a_bad_setting_and_a_missing_avatar_are_rows_too(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = newcomer_env(tmp_path, ASR_PORT=str(port), LLM_MAX_QUEUE="many", FACE=str(tmp_path / "nobody.png"))
        done = avatarchat("doctor", "--no-ui", env={**env, "CHECKPOINT_PATH": str(write_checkpoint(tmp_path / "w"))})
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output
    assert f"port {port}" in output and "set ASR_PORT" in output
    assert "LLM_MAX_QUEUE: Input should be a valid integer" in output  # its weights are not looked for
    assert "nobody.png" in output and "set FACE" in output


def test_the_table_aligns_its_columns() -> None:
    from io import StringIO

    out = StringIO()
    print_table(
        [Problem("animation", "wav2lip.pth", "/cache/wav2lip/wav2lip.pth", "`avatarchat download wav2lip`")], out
    )
    lines = out.getvalue().splitlines()
    header, row = lines[2], lines[3]
    assert header.index("missing") == row.index("wav2lip.pth") and header.index("looked in") == row.index("/cache")


@pytest.fixture
def stack(embedded_model_cache: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`avatarchat up --no-ui` with nothing set but a Wav2Lip checkpoint (and the session's model cache)."""
    env = newcomer_env(embedded_model_cache, CHECKPOINT_PATH=str(write_checkpoint(tmp_path / "wav2lip.pth")))
    env |= {"ANIMATION_AVATAR_DIR": str(tmp_path / "avatars"), "ANIMATION_OUTPUT_DIR": str(tmp_path / "videos")}
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "up", "--no-ui"], env=env, cwd=REPO, stdout=log, stderr=log
    )
    gateway = f"http://127.0.0.1:{env['GATEWAY_PORT']}"
    try:
        deadline = time.monotonic() + 600
        while not _ready(gateway):
            assert process.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, "the stack was not ready in 10 minutes"
            time.sleep(1)
        yield gateway, process
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_up_with_only_a_wav2lip_checkpoint_answers_paris_with_a_video(
    stack: tuple[str, subprocess.Popen[bytes]],
) -> None:
    gateway, _ = stack
    body = {"text": "What is the capital of France?", "detailed": True}
    response = httpx.post(f"{gateway}/v1/avatarchatbot", json=body, timeout=600, trust_env=False)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "paris" in answer["answer"].lower(), answer
    video = httpx.get(httpx.URL(gateway).join(answer["video_url"]), timeout=60, trust_env=False)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp" and answer["duration_s"] > 0.5
