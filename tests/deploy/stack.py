"""Reading the deployment files offline: compose files with their defaults, Dockerfiles, settings env names."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = {"xeon": REPO / "compose" / "xeon" / "compose.yaml", "gaudi": REPO / "compose" / "gaudi" / "compose.yaml"}
# The overlay that swaps our llm service for vLLM (COMPOSE_FILE=compose.yaml:compose.vllm.yaml).
VLLM_OVERLAY = {hardware: path.with_name("compose.vllm.yaml") for hardware, path in COMPOSE.items()}
DOCKERFILES = sorted((REPO / "docker").glob("*/Dockerfile*"))

# Our compose services and the settings class each one runs (`avatarchat serve <service>`).
SETTINGS = {
    "asr": "comps.asr.settings:AsrSettings",
    "llm": "comps.llm.settings:LlmSettings",
    "tts": "comps.tts.settings:TtsSettings",
    "animation": "comps.animation.settings:AnimationSettings",
    "gateway": "gateway.settings:GatewaySettings",
    "ui": "ui.settings:UiSettings",
}
MODEL_SERVICES = ("asr", "llm", "tts", "animation")
THIRD_PARTY = ("vllm-service",)
# The one-shot weights fetcher each model service waits for (`avatarchat download ...` in its image).
FETCHERS = {service: f"{service}-models" for service in MODEL_SERVICES} | {"vllm-service": "vllm-models"}
# OPEA's host-port variables: only where a service is published (`ports:`), never an address.
HOST_PORT_VARIABLES = {
    "asr": "WHISPER_SERVER_PORT",
    "tts": "SPEECHT5_SERVER_PORT",
    "llm": "LLM_SERVER_PORT",
    "vllm-service": "LLM_SERVER_PORT",
    "animation": "ANIMATION_SERVICE_PORT",
}

# Variables a container reads that are no setting of ours, and who reads them.
RUNTIME_ENV = {
    "http_proxy": "httpx and huggingface_hub (downloads)",
    "https_proxy": "httpx and huggingface_hub (downloads)",
    "no_proxy": "httpx and huggingface_hub: in-network calls bypass the proxy",
    "HF_TOKEN": "huggingface_hub, for gated models in `avatarchat download`",
    "HABANA_VISIBLE_DEVICES": "the Habana container runtime: which card the container sees",
    "OMPI_MCA_btl_vader_single_copy_mechanism": "Open MPI inside Intel's Gaudi stack",
    "PT_HPU_LAZY_MODE": "the Gaudi PyTorch bridge: 0 = eager mode with torch.compile",
}

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")


def interpolate(value: object, env: dict[str, str] | None = None) -> str:
    """A compose value with `${VAR}`, `${VAR:-default}`, `${VAR-default}` resolved against `env` (default: empty)."""
    env = env or {}

    def resolve(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if op is None:
            return env.get(name, "")
        if op == ":-":
            return env.get(name) or arg
        if op == "-":
            return env.get(name, arg)
        raise AssertionError(f"unsupported interpolation {match[0]!r}")

    return _VARIABLE.sub(resolve, str(value)).replace("$$", "$")


def variables(value: object) -> dict[str, str | None]:
    """The variables a compose value interpolates, with their default (None when it has none)."""
    return {m["name"]: (m["arg"] if m["op"] in (":-", "-") else None) for m in _VARIABLE.finditer(str(value))}


@cache
def compose(hardware: str) -> dict[str, Any]:
    """The parsed compose file (YAML anchors and merge keys resolved)."""
    parsed: dict[str, Any] = yaml.safe_load(COMPOSE[hardware].read_text(encoding="utf-8"))
    return parsed


@cache
def vllm_overlay(hardware: str) -> dict[str, Any]:
    """The parsed compose.vllm.yaml of a hardware."""
    parsed: dict[str, Any] = yaml.safe_load(VLLM_OVERLAY[hardware].read_text(encoding="utf-8"))
    return parsed


def services(hardware: str) -> dict[str, dict[str, Any]]:
    """The services of a compose file, and vLLM's from its overlay (`vllm-service`, `vllm-models`)."""
    found: dict[str, dict[str, Any]] = dict(compose(hardware)["services"])
    for name in ("vllm-service", "vllm-models"):
        found[name] = vllm_overlay(hardware)["services"][name]
    return found


def _environment_entries(service: dict[str, Any]) -> dict[str, str | None]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return {item.partition("=")[0]: (item.partition("=")[2] if "=" in item else None) for item in environment}
    return {key: None if value is None else str(value) for key, value in environment.items()}


def raw_environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment` with a value, map or list form, values not interpolated."""
    return {key: value for key, value in _environment_entries(service).items() if value is not None}


def passed_through(service: dict[str, Any]) -> set[str]:
    """The names a service lists without a value: compose passes them from the shell or .env only when set."""
    return {key for key, value in _environment_entries(service).items() if value is None}


def environment(service: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment as the container sees it when the shell sets `env` (default: nothing)."""
    return {key: interpolate(value, env) for key, value in raw_environment(service).items()}


def ports(service: dict[str, Any], env: dict[str, str] | None = None) -> list[tuple[int, int]]:
    """Published ports as (host, container), host ports interpolated against `env` (default: nothing set)."""
    pairs = []
    for entry in service.get("ports", []):
        host, container = interpolate(entry, env).split(":")
        pairs.append((int(host), int(container)))
    return pairs


def health_command(service: dict[str, Any]) -> str:
    """The health check's command line (CMD form joined by spaces)."""
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test[1:])


def settings_class(service: str) -> type[BaseSettings]:
    """The settings class of one of our services (an ImportError is a failure: no silent skip)."""
    module, _, name = SETTINGS[service].partition(":")
    cls: type[BaseSettings] = getattr(importlib.import_module(module), name)
    return cls


def accepted_env_names(cls: type[BaseSettings]) -> set[str]:
    """Every environment variable the class reads: prefix + field name, or each validation alias choice."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add(f"{prefix}{field_name}")
        elif isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            for choice in alias.choices:
                names.add(choice if isinstance(choice, str) else str(choice.path[0]))
        elif isinstance(alias, AliasPath):
            names.add(str(alias.path[0]))
    if cls.model_config.get("case_sensitive", False):
        return names
    return {name.upper() for name in names}


def default_port(cls: type[BaseSettings]) -> int:
    """The class's default port."""
    port = cls.model_fields["port"].default
    assert isinstance(port, int)
    return port


def built_from(service: dict[str, Any]) -> str | None:
    """The Dockerfile a compose service builds (repo-relative), or None for a third-party image."""
    build = service.get("build")
    if build is None:
        return None
    return str(build["dockerfile"])


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined, and the build stage it belongs to."""

    keyword: str
    arguments: str
    stage: int
    line: int


def instructions(path: Path) -> list[Instruction]:
    """A Dockerfile's instructions (comments and hadolint pragmas dropped, `\\` continuations joined)."""
    result: list[Instruction] = []
    stage = -1
    pending = ""
    start = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, arguments = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        result.append(Instruction(keyword=keyword, arguments=arguments.strip(), stage=stage, line=start))
    return result


def dockerignore_excludes(relative: str) -> bool:
    """Whether the repo's .dockerignore leaves `relative` out of the build context (moby's rules: last match wins,
    a pattern matching a parent directory matches its files, `**` spans directories)."""
    patterns = []
    for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            patterns.append((negate, _glob_to_regex(line.lstrip("!").strip("/"))))
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in patterns:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)
