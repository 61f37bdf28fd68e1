"""The page in a real browser and through gradio_client, against the one-machine pipeline on real small models."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.browser import launch
from support.servers import Served

from gateway.app import create_app as gateway_app
from gateway.settings import GatewaySettings
from ui.app import create_app as ui_app
from ui.settings import UiSettings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
QUESTION = "What is the capital of France?"


def _gateway(services: dict[str, Any], **override: int) -> GatewaySettings:
    ports = {f"{stage}_port": server.port for stage, server in services.items()} | override
    hosts = {f"{stage}_host": "127.0.0.1" for stage in services}
    return GatewaySettings(**hosts, **ports, max_tokens=8, log_level="WARNING")


@pytest.fixture(scope="module")
def page_url(real_services: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with Served(gateway_app(_gateway(real_services))) as gateway:
        settings = UiSettings(gateway_url=gateway.url, work_dir=tmp_path_factory.mktemp("ui"), log_level="WARNING")
        with Served(ui_app(settings)) as ui:
            yield ui.url


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _probe(path: Path) -> list[str]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(stream["codec_type"] for stream in json.loads(out.stdout)["streams"])


def test_gradio_client_gets_a_video(page_url: str) -> None:
    from gradio_client import Client

    client = Client(page_url, verbose=False)
    video, transcript, answer, status, *_ = client.predict(None, QUESTION, None, "default", "12.5", "", api_name="/ask")
    assert transcript == QUESTION
    assert answer.strip(), status
    path = Path(video["video"] if isinstance(video, dict) else video)
    assert path.is_file()
    assert _probe(path) == ["audio", "video"]


def _browser() -> Any:
    return launch()


def _ask_in_browser(url: str, screenshot: Path) -> Any:
    manager, browser = _browser()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url, wait_until="load", timeout=120_000)
        page.locator("#question textarea").wait_for(timeout=120_000)
        page.locator("#question textarea").fill(QUESTION)
        page.locator("#ask").click()
        page.wait_for_function(
            """() => {
                const video = document.querySelector('#answer-video video');
                const status = document.querySelector('#status');
                return (video && video.currentSrc) || (status && status.innerText.includes('Error'));
            }""",
            timeout=300_000,
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        return {
            "status": page.locator("#status").inner_text(),
            "transcript": page.locator("#transcript textarea").input_value(),
            "video": page.evaluate("() => { const v = document.querySelector('#answer-video video'); "
                                   "return v ? {src: v.currentSrc, error: v.error && v.error.code} : null; }"),
        }  # fmt: skip
    finally:
        browser.close()
        manager.stop()


def test_browser_asks_and_gets_a_playable_video(page_url: str) -> None:
    seen = _ask_in_browser(page_url, ARTIFACTS / "ui-answer.png")
    assert "Error" not in seen["status"], seen["status"]
    assert seen["transcript"] == QUESTION
    assert seen["video"] is not None and seen["video"]["src"], seen
    assert seen["video"]["error"] is None


def test_a_failing_stage_shows_the_gateways_message(
    real_services: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    broken = _gateway(real_services, llm_port=_closed_port())
    # Its /ready stays 503 (the LLM is unreachable): wait for the process only.
    with Served(gateway_app(broken), ready_path="/health") as gateway:
        settings = UiSettings(gateway_url=gateway.url, work_dir=tmp_path_factory.mktemp("ui-broken"))
        with Served(ui_app(settings)) as ui:
            seen = _ask_in_browser(ui.url, ARTIFACTS / "ui-error.png")
    assert seen["status"].startswith("Error:"), seen
    assert "llm" in seen["status"].lower()
