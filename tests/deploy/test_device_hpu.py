"""The Gaudi branch of comps.core.device, as far as a CPU allows (tests/comps/core/test_device.py has the CPU side).

Without a card the HPU path cannot run; what can be checked is that `hpu` selects Intel's recipe
(`hpu_backend` for torch.compile, bf16 autocast on device `hpu`) without importing any Habana module,
and that the availability probe answers False rather than failing when the Habana stack is absent
or incomplete.
"""

from __future__ import annotations

import subprocess
import sys
import types
from typing import Any

import pytest
import torch

from comps.core import device as device_module
from comps.core.device import Device, resolve_device

REPO_PROBE = (
    "import sys; from comps.core.device import resolve_device; import torch; "
    "d = resolve_device('cpu'); m = d.compile(torch.nn.Linear(4, 4), enabled=False); "
    "print(sorted(n for n in sys.modules if n.startswith('habana_frameworks')))"
)


@pytest.fixture
def gaudi_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend a Gaudi card is visible (the probe is the one place that imports Habana modules)."""
    monkeypatch.setattr(device_module, "_hpu_available", lambda: True)


def test_hpu_selects_intels_recipe_without_importing_habana(gaudi_present: None) -> None:
    chosen = resolve_device("hpu")
    assert chosen == Device(kind="hpu", compile_backend="hpu_backend")
    assert resolve_device("auto") == chosen  # a visible card wins over CUDA and CPU
    assert not [name for name in sys.modules if name.startswith("habana_frameworks")]


def test_hpu_compile_asks_for_the_hpu_backend(gaudi_present: None, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    model = torch.nn.Linear(4, 4)

    def fake_compile(module: torch.nn.Module, **kwargs: Any) -> torch.nn.Module:
        calls.append({"module": module, **kwargs})
        return module

    # The real hpu_backend is registered only by habana_frameworks; record what would be asked of it.
    monkeypatch.setattr(torch, "compile", fake_compile)
    assert resolve_device("hpu").compile(model, enabled=True) is model
    assert calls == [{"module": model, "backend": "hpu_backend", "dynamic": False}]
    assert resolve_device("hpu").compile(model, enabled=False) is model and len(calls) == 1


def test_hpu_autocast_is_bf16_on_the_hpu_device(gaudi_present: None) -> None:
    context = resolve_device("hpu").autocast(True)
    assert isinstance(context, torch.autocast)
    assert (context.device, context.fast_dtype) == ("hpu", torch.bfloat16)
    with context:  # entering it on a CPU-only torch is harmless: no HPU tensor is touched
        y = torch.nn.Linear(4, 2)(torch.ones(1, 4))
    assert y.dtype == torch.float32


def test_the_same_compile_and_autocast_code_runs_on_cpu_with_inductor_and_bf16() -> None:
    cpu = resolve_device("cpu")
    assert cpu.compile_backend == "inductor"
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.GELU(), torch.nn.Linear(16, 4)).eval()
    x = torch.randn(3, 16)
    with torch.no_grad():
        reference = model(x)
        compiled = cpu.compile(model, enabled=True)
        with cpu.autocast(True):
            low = compiled(x)
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), reference, atol=0.05)


def test_the_probe_is_false_without_the_habana_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "habana_frameworks", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "habana_frameworks.torch", None)
    monkeypatch.setitem(sys.modules, "habana_frameworks.torch.core", None)
    assert device_module._hpu_available() is False
    with pytest.raises(RuntimeError, match="DEVICE=hpu"):
        resolve_device("hpu")


def test_the_probe_is_false_when_the_bridge_imports_but_sees_no_card(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("habana_frameworks", "habana_frameworks.torch", "habana_frameworks.torch.core"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setattr(torch, "hpu", types.SimpleNamespace(is_available=lambda: False), raising=False)
    assert device_module._hpu_available() is False
    monkeypatch.setattr(torch, "hpu", types.SimpleNamespace(is_available=lambda: True), raising=False)
    assert device_module._hpu_available() is True


def test_cpu_use_never_imports_habana_modules() -> None:
    done = subprocess.run([sys.executable, "-c", REPO_PROBE], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
