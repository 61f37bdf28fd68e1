"""Settings base: one pydantic-settings class per process, strict values, read once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DeviceName = Literal["auto", "cpu", "cuda", "hpu"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _strict_bool(value: object) -> object:
    """Accept real booleans and the usual spellings; anything else ("maybe", "2") is an error."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("expected a boolean: true/false, 1/0, yes/no or on/off")


EnvBool = Annotated[bool, BeforeValidator(_strict_bool)]
"""A boolean setting that refuses anything but the usual spellings."""


def _auto_bool(value: object) -> bool | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    return bool(_strict_bool(value))


AutoBool = Annotated[bool | None, BeforeValidator(_auto_bool)]
"""A boolean setting that may also be `auto` (None): the code decides at run time (e.g. per CPU)."""


def env_alias(*names: str) -> AliasChoices:
    """Accept any of these environment variable names (our own first, then upstream OPEA's)."""
    return AliasChoices(*names)


class SettingsError(RuntimeError):
    """A configuration value is missing or invalid; raised at start-up, naming the variable."""


class ServiceSettings(BaseSettings):
    """What every service shares. Subclasses set `env_prefix` and add their own fields.

    Every field can come from the environment as `<PREFIX><FIELD>`; fields that OPEA also
    names accept OPEA's variable through `validation_alias`.
    """

    model_config = SettingsConfigDict(
        strict=False,
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    host: str = "0.0.0.0"  # noqa: S104 - a service listens on all interfaces in a container
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: LogLevel = "INFO"
    device: DeviceName = "auto"
    model_cache_dir: Path = Field(
        default=Path.home() / ".cache" / "avatarchat",
        validation_alias=env_alias("MODEL_CACHE_DIR", "AVATARCHAT_MODEL_CACHE"),
    )
    offline: EnvBool = Field(default=False, validation_alias=env_alias("AVATARCHAT_OFFLINE", "HF_HUB_OFFLINE"))
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_concurrency: int = Field(default=1, ge=1, le=64)
    max_queue: int = Field(default=8, ge=0, le=4096)
    # The CPU budget: the services of a real-time answer run at once (LLM writing, TTS speaking, Wav2Lip
    # drawing), so each takes only its share of the cores; oversubscribed OpenMP threads stall each other.
    threads: int | None = Field(default=None, ge=1, le=256, description="torch threads; unset: the service's own")
    nice: int = Field(default=0, ge=0, le=19, description="`avatarchat serve`'s niceness: >0 yields shared cores")


S = TypeVar("S", bound=ServiceSettings)


def _variable_names(cls: type[ServiceSettings], location: str, prefix: str) -> str:
    """The environment variable(s) a failing field is read from: `PREFIX_FIELD`, or every alias it accepts."""
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        choices = [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else []
        if location == name or location in choices:
            return " / ".join(choices) if choices else f"{prefix}{name}".upper()
    return location.upper()


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build a settings class, turning a validation failure into a SettingsError naming the variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        problems = []
        for err in exc.errors():
            variable = _variable_names(cls, str(err["loc"][0]) if err["loc"] else "", prefix)
            problems.append(f"{variable}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError(f"invalid {cls.__name__}: " + "; ".join(problems)) from exc
