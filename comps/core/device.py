"""Device selection (cpu / cuda / hpu): the torch device, the autocast dtype and the torch.compile backend.

Gaudi (HPU) follows Intel's eager recipe: `PT_HPU_LAZY_MODE=0`, `torch.compile(backend="hpu_backend")`,
bf16 autocast. HPU modules are imported only when the HPU is asked for.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

DeviceKind = Literal["cpu", "cuda", "hpu"]

_COMPILE_BACKEND: dict[str, str] = {"cpu": "inductor", "cuda": "inductor", "hpu": "hpu_backend"}


@dataclass(frozen=True)
class Device:
    """A resolved device and how to run models fast on it."""

    kind: DeviceKind
    compile_backend: str

    @property
    def torch_device(self) -> torch.device:
        """The torch.device to move models and tensors to."""
        import torch

        return torch.device(self.kind)

    def autocast(self, enabled: bool, dtype_name: str = "bfloat16") -> contextlib.AbstractContextManager[object]:
        """An autocast context for reduced precision, or a no-op when disabled."""
        if not enabled:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.kind, dtype=getattr(torch, dtype_name))

    @property
    def native_bf16(self) -> bool:
        """Whether bf16 runs on native kernels here: Gaudi, a CUDA card with bf16, or a CPU with AVX-512 BF16/AMX.

        On a CPU without them oneDNN falls back to reference code, 10-100x slower than fp32.
        """
        import torch

        if self.kind == "hpu":
            return True
        if self.kind == "cuda":
            return bool(torch.cuda.is_bf16_supported())
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a private op: absent in some builds
            return False

    def bf16(self, setting: bool | None) -> bool:
        """The bf16 choice for a setting: as set, or (None, "auto") where native bf16 kernels exist."""
        return self.native_bf16 if setting is None else setting

    def compile(self, module: torch.nn.Module, enabled: bool) -> torch.nn.Module:
        """`torch.compile` the module with this device's backend when enabled."""
        if not enabled:
            return module
        import torch

        compiled = torch.compile(module, backend=self.compile_backend, dynamic=False)
        return compiled  # type: ignore[return-value]


def _hpu_available() -> bool:
    try:
        importlib.import_module("habana_frameworks.torch.core")
    except ImportError:
        return False
    import torch

    hpu = getattr(torch, "hpu", None)
    return bool(hpu is not None and hpu.is_available())


def resolve_device(name: str) -> Device:
    """Turn a setting (`auto`, `cpu`, `cuda`, `hpu`) into a Device.

    `auto` prefers HPU, then CUDA, then CPU. Asking for a device that is not present raises
    RuntimeError at start-up rather than silently running elsewhere.
    """
    if name == "hpu":
        if not _hpu_available():
            raise RuntimeError("DEVICE=hpu but habana_frameworks is not importable or no Gaudi card is visible")
        return Device(kind="hpu", compile_backend=_COMPILE_BACKEND["hpu"])
    if name == "cpu":
        return Device(kind="cpu", compile_backend=_COMPILE_BACKEND["cpu"])
    import torch

    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("DEVICE=cuda but no CUDA device is available")
        return Device(kind="cuda", compile_backend=_COMPILE_BACKEND["cuda"])
    if name != "auto":
        raise ValueError(f"unknown device {name!r}: expected auto, cpu, cuda or hpu")
    if _hpu_available():
        return Device(kind="hpu", compile_backend=_COMPILE_BACKEND["hpu"])
    if torch.cuda.is_available():
        return Device(kind="cuda", compile_backend=_COMPILE_BACKEND["cuda"])
    return Device(kind="cpu", compile_backend=_COMPILE_BACKEND["cpu"])


@contextlib.contextmanager
def inference_mode() -> Iterator[None]:
    """`torch.inference_mode()` without importing torch at module import."""
    import torch

    with torch.inference_mode():
        yield
