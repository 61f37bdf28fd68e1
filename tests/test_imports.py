"""Importing any module of the project is cheap and side-effect free (STYLE.md, habit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["comps", "megaservice", "gateway", "ui", "cli"]

PROBE = r"""
import importlib, json, socket, sys, threading
opened, started, loaded = [], [], []
real_socket_init = socket.socket.__init__
def spy_socket(self, *a, **k):
    opened.append(repr(a))
    real_socket_init(self, *a, **k)
socket.socket.__init__ = spy_socket
real_start = threading.Thread.start
def spy_start(self):
    started.append(self.name)
    real_start(self)
threading.Thread.start = spy_start
import torch
real_load = torch.load
def spy_load(*a, **k):
    loaded.append(repr(a[:1]))
    return real_load(*a, **k)
torch.load = spy_load
failed = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"opened": opened, "started": started, "loaded": loaded, "failed": failed}))
"""


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        root = REPO / package
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__main__":
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_imports_without_side_effects() -> None:
    modules = _modules()
    assert len(modules) > 10, modules
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, timeout=600, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    assert report["opened"] == [], "a module opened a socket at import"
    assert report["started"] == [], "a module started a thread at import"
    assert report["loaded"] == [], "a module loaded weights at import"
