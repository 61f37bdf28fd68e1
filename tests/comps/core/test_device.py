from __future__ import annotations

import sys

import pytest
import torch

from comps.core.device import resolve_device


def test_cpu_device() -> None:
    device = resolve_device("cpu")
    assert device.kind == "cpu" and device.compile_backend == "inductor"
    assert device.torch_device == torch.device("cpu")


def test_auto_is_cpu_here_and_imports_no_hpu_module() -> None:
    assert resolve_device("auto").kind == "cpu"
    assert "habana_frameworks.torch.core" not in sys.modules


def test_hpu_requested_without_gaudi_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="DEVICE=hpu"):
        resolve_device("hpu")


def test_unknown_device() -> None:
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


def test_bf16_autocast_and_compile_run_on_cpu() -> None:
    device = resolve_device("cpu")
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        expected = model(x)
        with device.autocast(True):
            low = model(x)
        assert low.dtype == torch.bfloat16
        assert torch.allclose(low.float(), expected, atol=0.1)
        compiled = device.compile(model, enabled=True)
        assert torch.allclose(compiled(x), expected, atol=1e-5)
    assert device.compile(model, enabled=False) is model
