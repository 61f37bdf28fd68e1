"""The page's Live tab in headless Chromium, its microphone a WAV file: heard, answered, the frames playing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.browser import launch
from support.models import speak
from support.servers import Served

from comps.core.audio import encode_wav
from gateway.app import create_app as gateway_app
from gateway.settings import GatewaySettings
from ui.app import create_app as ui_app
from ui.settings import UiSettings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
QUESTION = "What is the capital of France?"

# Counts the frames the live <video> presents (requestVideoFrameCallback), from the moment it is called.
COUNT_FRAMES = """() => {
    const video = document.querySelector('#live video');
    window.liveFrames = 0;
    const tick = () => { window.liveFrames += 1; video.requestVideoFrameCallback(tick); };
    video.requestVideoFrameCallback(tick);
}"""


@pytest.fixture(scope="module")
def page_url(real_services: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ports = {f"{stage}_port": server.port for stage, server in real_services.items()}
    hosts = {f"{stage}_host": "127.0.0.1" for stage in real_services}
    settings = GatewaySettings(**hosts, **ports, max_tokens=12, log_level="WARNING")
    with Served(gateway_app(settings)) as gateway:
        ui = UiSettings(gateway_url=gateway.url, work_dir=tmp_path_factory.mktemp("ui-live"), log_level="WARNING")
        with Served(ui_app(ui)) as served:
            yield served.url


def microphone_wav(folder: Path) -> Path:
    """The question after 1.5 s of silence (the page connects meanwhile), then silence to end the turn."""
    silence = np.zeros(16_000 * 3 // 2, np.float32)
    path = folder / "question.wav"
    path.write_bytes(encode_wav(np.concatenate([silence, speak(QUESTION), silence, silence, silence]), 16_000))
    return path


def test_the_live_tab_hears_a_spoken_question_and_plays_the_answer(page_url: str, tmp_path: Path) -> None:
    wav = microphone_wav(tmp_path)
    manager, browser = launch(
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop", "--autoplay-policy=no-user-gesture-required",
    )  # fmt: skip
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(page_url, wait_until="load", timeout=120_000)
        page.get_by_role("tab", name="Live").click()
        page.locator("#live .live-start").click()
        page.wait_for_function("() => document.querySelector('#live .live').dataset.live === 'on'", timeout=60_000)
        page.evaluate(COUNT_FRAMES)
        page.wait_for_function(
            "() => document.querySelector('#live .live-heard').textContent.length > 0", timeout=120_000
        )
        speaking = "() => document.querySelector('#live .live').dataset.state === 'speaking'"
        page.wait_for_function(speaking, timeout=180_000)
        page.wait_for_timeout(1500)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-live.png"), full_page=True)
        seen = page.evaluate("""() => {
            const root = document.querySelector('#live .live');
            const video = root.querySelector('video');
            return {heard: root.querySelector('.live-heard').textContent,
                    said: root.querySelector('.live-said').textContent,
                    error: root.querySelector('.live-error').textContent,
                    frames: window.liveFrames, time: video.currentTime, width: video.videoWidth,
                    live: root.dataset.live};
        }""")
        page.locator("#live .live-stop").click()
        stopped = page.evaluate("() => document.querySelector('#live .live').dataset.live")
    finally:
        browser.close()
        manager.stop()
    assert "capital" in seen["heard"].lower() and "france" in seen["heard"].lower(), seen
    assert seen["said"].strip(), seen
    assert not seen["error"], seen
    assert seen["width"] == 512, seen  # the avatar's frames, at the size they render
    assert seen["frames"] >= 25, seen  # frames presented while the question was heard and answered
    assert seen["time"] > 1.0, seen
    assert stopped == "off"
