"""What the reliability tests measured: one JSON per test under artifacts/reliability/, and a one-line summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "reliability"


def record(name: str, figures: dict[str, Any], summary: str) -> Path:
    """Write `figures` to `artifacts/reliability/<name>.json` and print `summary` on one line."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    sys.stdout.write(f"reliability/{name}: {summary} [{path}]\n")
    return path
