"""The preflight: before `avatarchat up` starts anything, every weight file, ffmpeg and the ports; one table if not.

`avatarchat doctor` prints the same table and starts nothing. Each service says what it loads
(`weight_checks` in its `download` module, the same look-ups its start-up makes); `up` lets them
download what is missing where the service's settings allow (progress bars on the terminal),
`doctor` only looks. A missing piece is one row — what, where it was looked for, how to get it —
never a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from comps.animation.settings import AnimationSettings
from comps.asr.settings import AsrSettings
from comps.core.settings import ServiceSettings, SettingsError, load_settings
from comps.core.weights import WeightsMissingError
from comps.llm.settings import LlmSettings
from comps.tts.settings import TtsSettings
from gateway.settings import GatewaySettings
from ui.settings import UiSettings

# service -> (its settings, the module whose `weight_checks(settings)` lists what it loads)
SERVICES: dict[str, tuple[type[ServiceSettings], str]] = {
    "asr": (AsrSettings, "comps.asr.download"),
    "llm": (LlmSettings, "comps.llm.download"),
    "tts": (TtsSettings, "comps.tts.download"),
    "animation": (AnimationSettings, "comps.animation.download"),
}
ENTRY: dict[str, type[ServiceSettings]] = {"gateway": GatewaySettings, "ui": UiSettings}


@dataclass(frozen=True)
class Problem:
    """One row of the table: what a service is missing, where it was looked for, and how to get it."""

    service: str
    missing: str
    looked_in: str
    fix: str


def preflight(*, host: str, fetch: bool, ui: bool = True) -> list[Problem]:
    """Everything the stack needs on this machine; an empty list when all is in place.

    Args:
        host: the address the services will listen on (the ports are tried there).
        fetch: let each service download what is missing, where its settings allow; else only look.
        ui: the page will be started too (its port is checked).
    """
    problems: list[Problem] = []
    ports: dict[str, tuple[int, str]] = {}
    for name, (settings_class, module) in SERVICES.items():
        settings = _settings(name, settings_class, problems)
        if settings is None:
            continue
        ports[name] = (settings.port, f"{name.upper()}_PORT")
        if not fetch:
            settings = settings.model_copy(update={"offline": True})
        checks: list[Callable[[], object]] = importlib.import_module(module).weight_checks(settings)
        problems += [problem for check in checks if (problem := _run(name, check)) is not None]
        if isinstance(settings, AnimationSettings):
            problems += _animation_files(settings)
    for name, settings_class in ENTRY.items():
        if name == "ui" and not ui:
            continue
        entry = _settings(name, settings_class, problems)
        if entry is not None:
            ports[name] = (entry.port, f"{name.upper()}_PORT")
    problems += [_busy(name, port, setting) for name, (port, setting) in ports.items() if _in_use(host, port)]
    return problems


def print_table(problems: list[Problem], out: TextIO = sys.stdout) -> None:
    """The problems as one aligned table (or a line saying all is in place)."""
    if not problems:
        out.write("avatarchat: every model, ffmpeg and port is in place.\n")
        return
    header = Problem("service", "missing", "looked in", "to get it")
    rows = [header, *problems]
    widths = [max(len(getattr(row, field)) for row in rows) for field in ("service", "missing", "looked_in")]
    out.write(f"avatarchat: {len(problems)} missing; nothing was started.\n\n")
    for row in rows:
        cells = (row.service, row.missing, row.looked_in)
        out.write("  " + "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)))
        out.write(f"  {row.fix}\n")
    out.write("\nRun `avatarchat doctor` to check again without starting anything.\n")


def _settings(name: str, settings_class: type[ServiceSettings], problems: list[Problem]) -> ServiceSettings | None:
    try:
        return load_settings(settings_class)
    except SettingsError as exc:  # names each variable, what is wrong with it and what it was
        problems.append(Problem(name, "valid settings", "the environment", str(exc)))
        return None


def _run(service: str, check: Callable[[], object]) -> Problem | None:
    """One look-up: None when it finds its file, else the row for what it could not find."""
    try:
        check()
    except WeightsMissingError as exc:
        return _weights_row(service, exc)
    except (FileNotFoundError, ValueError) as exc:  # SadTalker's CheckpointMissingError; an unknown model name
        where = getattr(exc, "directory", None)
        what = getattr(exc, "checkpoint", None) or str(exc)
        fix = "avatarchat download sadtalker" if where is not None else "fix the model setting"
        return Problem(service, what, str(where or "-"), fix)
    return None


def _weights_row(service: str, exc: WeightsMissingError) -> Problem:
    searched = ", ".join(str(path) for path in exc.searched) or "-"
    fixes = [f"`{exc.command}`"] if exc.command else []
    if exc.searched:
        fixes.append(f"or put a copy at {exc.searched[-1]}")
    if exc.setting:
        fixes.append(f"or set {exc.setting}")
    return Problem(service, exc.what or str(exc), searched, " ".join(fixes) or str(exc))


def _animation_files(settings: AnimationSettings) -> list[Problem]:
    """The default avatar and ffmpeg (the service encodes whole videos with it)."""
    problems = []
    if settings.face is not None and not settings.face.is_file():
        problems.append(Problem("animation", "the default avatar", str(settings.face), "set FACE to an image or video"))
    if shutil.which(settings.ffmpeg) is None and not Path(settings.ffmpeg).is_file():
        fix = "install it (Debian: apt-get install ffmpeg; `make run` does), or set ANIMATION_FFMPEG"
        problems.append(Problem("animation", "ffmpeg", f"{settings.ffmpeg} on PATH", fix))
    return problems


def _in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free for uvicorn too
        with contextlib.suppress(OSError):
            probe.bind((host, port))
            return False
    return True


def _busy(name: str, port: int, setting: str) -> Problem:
    return Problem(name, f"port {port}", "in use on this machine", f"stop what listens there, or set {setting}")
