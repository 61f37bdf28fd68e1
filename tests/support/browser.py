"""Headless Debian Chromium driven by Playwright, as the browser tests launch it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# No background traffic (this machine's network is closed), no sandbox (tests run as root).
ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic")  # fmt: skip


def launch(*extra: str) -> tuple[Any, Any]:
    """(playwright manager, browser); stop both when done: `browser.close(); manager.stop()`."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "Debian's chromium is installed by `make test` (test-deps)"
    manager = sync_playwright().start()
    browser = manager.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[*ARGS, *extra])
    return manager, browser
