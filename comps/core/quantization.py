"""Optional FP8 through Intel Neural Compressor (INC 3.x): measure or quantize a module when a config is set.

Gaudi's FP8 flow has two runs. A MEASURE config makes `prepare` hook the supported modules
(Linear, Conv2d, Matmul, ...) so that real inputs record their max-abs statistics; those are
written under `dump_stats_path` by `finish_fp8_measurement`. A QUANTIZE config then makes
`convert` swap those modules for FP8 ones scaled from the recorded statistics. The JSON files
are INC's own `FP8Config` format (`FP8Config.from_json_file`), so a file made for
optimum-habana or vLLM on Gaudi works here too.

With no config path nothing happens and nothing is imported; with one, INC is imported only
then, and a missing INC is a start-up error, never a silent run in bf16.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

Fp8Mode = Literal["MEASURE", "QUANTIZE"]
ModuleT = TypeVar("ModuleT", bound="torch.nn.Module")

INSTALL_HINT = (
    "Intel Neural Compressor ships in Intel's Gaudi PyTorch images; elsewhere `pip install neural-compressor-pt`"
)


class Fp8ConfigError(ValueError):
    """The FP8 config file is missing, is not JSON, or is not an FP8 config this code can apply."""


class Fp8Unavailable(RuntimeError):
    """An FP8 config is set but Intel Neural Compressor cannot be imported."""


class ModuleFilter(BaseModel):
    """INC's allowlist/blocklist: module names (substrings) and module class names."""

    model_config = ConfigDict(extra="forbid")

    names: list[str] = Field(default_factory=list)
    types: list[str] = Field(default_factory=list)


class Fp8ConfigFile(BaseModel):
    """The fields of an INC `FP8Config` JSON that decide what happens; INC's other keys pass through.

    `mode` must be explicit: INC's `AUTO` guesses from files on disk, and a service has to know
    whether it is measuring (and must write statistics on shutdown) or serving FP8.
    """

    model_config = ConfigDict(extra="allow")

    mode: Fp8Mode
    dump_stats_path: str
    observer: str = "maxabs"
    fp8_config: Literal["E4M3", "E5M2"] = "E4M3"
    hp_dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    scale_method: str = "maxabs_hw"
    allowlist: ModuleFilter = Field(default_factory=ModuleFilter)
    blocklist: ModuleFilter = Field(default_factory=ModuleFilter)
    use_qdq: bool = False

    def measurement_files(self) -> list[Path]:
        """The statistics a MEASURE run wrote for this config (INC names them `<prefix>_hooks_<observer>*.json`)."""
        prefix = Path(self.dump_stats_path)
        return sorted(prefix.parent.glob(f"{prefix.name}_hooks_{self.observer}*.json"))


def read_fp8_config(path: Path) -> Fp8ConfigFile:
    """Read and check an INC FP8 config JSON without importing INC.

    Raises:
        Fp8ConfigError: the file is missing, unreadable, not JSON, or lacks an explicit
            MEASURE/QUANTIZE mode or an absolute `dump_stats_path`.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise Fp8ConfigError(f"FP8 config {path} does not exist") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Fp8ConfigError(f"FP8 config {path} is not readable JSON: {exc}") from exc
    try:
        config = Fp8ConfigFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors())
        raise Fp8ConfigError(f"FP8 config {path} is not a usable INC FP8Config: {problems}") from exc
    if not Path(config.dump_stats_path).is_absolute():
        # INC resolves a relative prefix against the working directory, which differs between runs.
        raise Fp8ConfigError(
            f"FP8 config {path}: dump_stats_path must be absolute (got {config.dump_stats_path!r}); "
            "put it on the model cache volume, e.g. /models/fp8/<model>/measure"
        )
    return config


def _import_inc(config_path: Path) -> Any:
    """`neural_compressor.torch.quantization`, or Fp8Unavailable naming the config that asked for it."""
    try:
        from neural_compressor.torch import quantization
    except ImportError as exc:
        raise Fp8Unavailable(
            f"FP8 config {config_path} is set but Intel Neural Compressor is not importable ({exc}). "
            f"{INSTALL_HINT}, or unset the config to run in bf16."
        ) from exc
    return quantization


def apply_fp8(module: ModuleT, config_path: Path | None) -> ModuleT:
    """Prepare `module` for FP8 measurement or convert it to FP8, as the config's mode says.

    Call it after the module is on its device and in eval mode, before `torch.compile`.

    Args:
        module: the loaded model.
        config_path: an INC FP8Config JSON, or None to leave the module untouched.

    Returns:
        The same module when no config is set; otherwise the module INC returns (patched in place).

    Raises:
        Fp8ConfigError: the config file is unusable, or QUANTIZE finds no measurements.
        Fp8Unavailable: a config is set but INC is not installed.
    """
    if config_path is None:
        return module
    config = read_fp8_config(config_path)
    if config.mode == "QUANTIZE" and not config.measurement_files():
        raise Fp8ConfigError(
            f"FP8 config {config_path} quantizes from measurements at {config.dump_stats_path}_hooks_"
            f"{config.observer}*.json, and there are none: run once with the MEASURE config first"
        )
    quantization = _import_inc(config_path)
    inc_config = quantization.FP8Config.from_json_file(str(config_path))
    if config.mode == "MEASURE":
        logger.info("FP8: measuring %s with %s", type(module).__name__, config_path)
        prepared: ModuleT = quantization.prepare(module, inc_config)
    else:
        logger.info("FP8: quantizing %s to %s with %s", type(module).__name__, config.fp8_config, config_path)
        prepared = quantization.convert(module, inc_config)
    return prepared


def finish_fp8_measurement(module: torch.nn.Module, config_path: Path | None) -> list[Path]:
    """Write the statistics a MEASURE-prepared module recorded; a no-op for no config or QUANTIZE.

    Call it once, after calibration inputs went through the module (e.g. at service shutdown).

    Returns:
        The measurement files now on disk (empty when nothing was measured).
    """
    if config_path is None:
        return []
    config = read_fp8_config(config_path)
    if config.mode != "MEASURE":
        return []
    _import_inc(config_path).finalize_calibration(module)
    files = config.measurement_files()
    logger.info("FP8: wrote %d measurement file(s) under %s", len(files), Path(config.dump_stats_path).parent)
    return files
