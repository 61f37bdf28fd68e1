"""Settings base: one pydantic-settings class per process, strict values, read once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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


def _api_key(value: object) -> object:
    """An empty key (compose's `${AVATARCHAT_API_KEY:-}`) is no key; a key must fit in an HTTP header as is."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or not isinstance(value, str):
        return value
    value = value.strip()
    if not value:
        return None
    if not all(0x21 <= ord(char) <= 0x7E for char in value):
        raise ValueError("an API key is printable ASCII without spaces (it travels in the Authorization header)")
    return value


ApiKey = Annotated[SecretStr | None, BeforeValidator(_api_key)]
"""A bearer key setting: None when unset or empty."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(text: str) -> str:
    """`scheme://host[:port]` as a browser sends it in `Origin` (lowercase, no default port, no path)."""
    parts = urlsplit(text.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        raise ValueError(f"{text!r} is not an origin: expected http(s)://host[:port]")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{text!r} is not an origin: an origin has no path, query or fragment")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an origin: {exc}") from exc
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + ("" if port in (None, _DEFAULT_PORTS[parts.scheme]) else f":{port}")


def _origins(value: object) -> object:
    """A comma-separated list (or a list) of origins; `*` (any origin) only on its own."""
    if isinstance(value, str):
        value = [item for item in value.split(",") if item.strip()]
    if not isinstance(value, list | tuple):
        return value
    items = [str(item).strip() for item in value]
    if "*" in items:
        if len(items) > 1:
            raise ValueError("'*' allows every origin: list it alone, or list the origins without it")
        return ("*",)
    return tuple(dict.fromkeys(_origin(item) for item in items))


CorsOrigins = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_origins)]
"""Browser origins allowed to call a service (CORS): a comma-separated list; empty allows none (same origin only)."""


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
    # Security (docs/security.md). Not `api_key`: the llm service's `api_key` is the key of ITS upstream.
    service_api_key: ApiKey = Field(
        default=None,
        validation_alias=env_alias("AVATARCHAT_API_KEY"),
        description="the bearer key every request must carry (probes excepted); unset: open",
    )
    cors_origins: CorsOrigins = Field(
        default=(),
        validation_alias=env_alias("AVATARCHAT_CORS_ORIGINS"),
        description="browser origins allowed to call (comma-separated); empty: none, same origin only",
    )


S = TypeVar("S", bound=ServiceSettings)


def _variable_names(cls: type[ServiceSettings], location: str, prefix: str) -> str:
    """The environment variable(s) a failing field is read from: `PREFIX_FIELD`, or every alias it accepts."""
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        choices = [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else []
        if location == name or location in choices:
            return " / ".join(choices) if choices else f"{prefix}{name}".upper()
    return location.upper()


def _secret(cls: type[ServiceSettings], location: str) -> bool:
    """Whether the failing field holds a secret, whose value an error message must not repeat."""
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        choices = [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else []
        if location == name or location in choices:
            return info.annotation is SecretStr or SecretStr in get_args(info.annotation)
    return False


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build a settings class, turning a validation failure into a SettingsError naming the variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        problems = []
        for err in exc.errors():
            location = str(err["loc"][0]) if err["loc"] else ""
            variable = _variable_names(cls, location, prefix)
            shown = "a hidden value" if _secret(cls, location) else repr(err.get("input"))
            problems.append(f"{variable}: {err['msg']} (got {shown})")
        raise SettingsError(f"invalid {cls.__name__}: " + "; ".join(problems)) from exc
