"""Security across the services: the key on every real service app, and no pickle on any load path.

The apps are built by their own `create_app` with a key and no models loaded: the key is checked before
any route runs, so a refusal needs no model, and a request with the key that reaches a route's
validation (a 400 for a body missing its fields) proves it went past the check.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from comps.core.auth import bearer
from comps.core.errors import Unavailable, UpstreamError
from comps.core.settings import ServiceSettings
from megaservice.lipsync import open_lipsync

KEY = "0123-deployment-k3y"
REPO = Path(__file__).resolve().parents[1]
SOURCES = ("comps", "gateway", "megaservice", "cli", "ui")

# service -> (app module, settings class, a route of its own, a body its validation refuses)
SERVICES: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "asr": ("comps.asr.app", "comps.asr.settings:AsrSettings", "/v1/asr", {}),
    "llm": ("comps.llm.app", "comps.llm.settings:LlmSettings", "/v1/chat/completions", {}),
    "tts": ("comps.tts.app", "comps.tts.settings:TtsSettings", "/v1/tts", {}),
    "animation": ("comps.animation.app", "comps.animation.settings:AnimationSettings", "/v1/animation", {}),
    "gateway": ("gateway.app", "gateway.settings:GatewaySettings", "/v1/avatarchatbot", {"n": 2}),
}


def _app(service: str, **values: Any) -> FastAPI:
    module, settings, _, _ = SERVICES[service]
    settings_module, _, name = settings.partition(":")
    cls: type[ServiceSettings] = getattr(importlib.import_module(settings_module), name)
    app: FastAPI = importlib.import_module(module).create_app(cls(**values))
    return app


@pytest.mark.anyio
@pytest.mark.parametrize("service", list(SERVICES))
async def test_every_service_needs_the_key(service: str) -> None:
    _, _, route, invalid = SERVICES[service]
    app = _app(service, service_api_key=KEY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for headers in ({}, bearer("wrong"), {"Authorization": KEY}):
            for method, path in (("POST", route), ("GET", "/v1/statistics")):
                refused = await client.request(method, path, json=invalid, headers=headers)
                assert refused.status_code == 401, (service, path, refused.text)
                assert refused.headers["www-authenticate"] == "Bearer"
                assert refused.json()["error"]["type"] == "authentication"
        passed = await client.post(route, json=invalid, headers=bearer(KEY))
        assert passed.status_code == 400 and passed.json()["error"]["code"] == "validation_error", passed.text
        assert (await client.get("/v1/statistics", headers=bearer(KEY))).status_code == 200
        for probe in ("/health", "/v1/health_check", "/metrics"):
            assert (await client.get(probe)).status_code == 200, (service, probe)
        assert (await client.get("/ready")).status_code == 503  # open, and honest: nothing is loaded here


@pytest.mark.anyio
@pytest.mark.parametrize("service", list(SERVICES))
async def test_without_a_key_every_service_is_open(service: str) -> None:
    _, _, route, invalid = SERVICES[service]
    app = _app(service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answered = await client.post(route, json=invalid)
    assert answered.status_code == 400 and answered.json()["error"]["code"] == "validation_error"


@pytest.mark.anyio
async def test_the_animation_stream_needs_the_key() -> None:
    app = _app("animation", service_api_key=KEY)
    with pytest.raises(UpstreamError) as refused:
        await open_lipsync(base_url="http://animation.in-process", app=app, options={}, connect_timeout_s=5)
    assert refused.value.code == "upstream_auth"
    # With the key the socket opens; the service (no models here) then says it is not ready, in band.
    with pytest.raises(Unavailable) as loading:
        await open_lipsync(
            base_url="http://animation.in-process", app=app, options={}, connect_timeout_s=5, headers=bearer(KEY)
        )
    assert loading.value.code == "not_ready"


# ---- no pickle on any load path ---------------------------------------------------------------------

_PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
_PICKLE_LOADS = {"load", "loads", "Unpickler", "open"}


def _sources() -> Iterator[Path]:
    for folder in SOURCES:
        yield from sorted((REPO / folder).rglob("*.py"))


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """`torch.load` for `torch.load`, `t.load` (import torch as t) or `load` (from torch import load)."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        owner = _dotted(node.value, aliases)
        return f"{owner}.{node.attr}" if owner else None
    return None


def _aliases(tree: ast.Module) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for name in node.names:
                aliases[name.asname or name.name] = name.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for name in node.names:
                aliases[name.asname or name.name] = f"{node.module}.{name.name}"
    return aliases


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_constant(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _unpickles(module: str, function: str) -> bool:
    """A pickle-family load, pandas' read_pickle, or a torch.jit / torch.hub load (both unpickle)."""
    family = module.split(".")[0] in _PICKLE_MODULES and function in _PICKLE_LOADS
    return family or function == "read_pickle" or (module in ("torch.jit", "torch.hub") and function == "load")


def unsafe_loads(path: Path, root: Path = REPO) -> list[str]:
    """Every call in `path` that could unpickle, as `file:line: name`.

    torch.load without weights_only=True, np.load with allow_pickle other than False, any pickle-family
    load, pandas' read_pickle, torch.jit and torch.hub loads.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or (name := _dotted(node.func, aliases)) is None:
            continue
        where = f"{path.relative_to(root)}:{node.lineno}: {name}"
        module, _, function = name.rpartition(".")
        if name == "torch.load" and not _is_constant(_keyword(node, "weights_only"), True):
            found.append(f"{where} without weights_only=True")
        elif name in ("numpy.load", "np.load") and _keyword(node, "allow_pickle") is not None:
            if not _is_constant(_keyword(node, "allow_pickle"), False):
                found.append(f"{where} with allow_pickle other than False")
        elif _unpickles(module, function):
            found.append(where)
    return found


def test_no_source_file_unpickles() -> None:
    files = list(_sources())
    assert len(files) > 100  # the scan sees the tree
    problems = [problem for path in files for problem in unsafe_loads(path)]
    assert problems == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import torch\nimport numpy as np\nimport pickle as p\nfrom joblib import load\n"
        "torch.load('a')\ntorch.load('a', weights_only=False)\nnp.load('a', allow_pickle=True)\n"
        "p.loads(b'')\nload('x')\nimport torch as t\nt.load('b', map_location='cpu')\n"
        "torch.load('ok', weights_only=True)\nnp.load('ok')\nnp.load('ok', allow_pickle=False)\n"
        "import pandas\npandas.read_pickle('x')\n"
    )
    found = unsafe_loads(bad, root=tmp_path)
    assert [line.split(":")[1] for line in found] == ["5", "6", "7", "8", "9", "11", "16"], found
