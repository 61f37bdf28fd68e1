"""Print the project's requirements for some extras, one a line, for image builds that must not touch torch.

Gaudi images keep the HPU build of torch that Intel's base image ships; installing `.[asr]` would
replace it with the pinned CPU/CUDA wheel of the `torch` extra. This script reads pyproject.toml,
expands `avatarchat[...]` self-references, and leaves out the extras named with `--without`, so
the build can run `pip install -r` on the rest and then `pip install --no-deps .`.

    python3 extra_requirements.py pyproject.toml asr --without torch
    python3 extra_requirements.py pyproject.toml animation --without torch --only basicsr
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

_SELF_REFERENCE = re.compile(r"^\s*(?P<name>[A-Za-z0-9_.-]+)\s*\[(?P<extras>[^\]]+)\]\s*$")
_NAME = re.compile(r"^\s*([A-Za-z0-9_.-]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: Path, extras: list[str], without: set[str]) -> list[str]:
    """The base dependencies plus those of `extras`, self-references expanded, `without` extras left out."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    own_name = _canonical(project["name"])
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    result: list[str] = []
    seen: set[str] = set()

    def add(extra: str) -> None:
        if extra in seen or extra in without:
            return
        if extra not in optional:
            raise SystemExit(f"extra {extra!r} is not in {pyproject} (known: {', '.join(sorted(optional))})")
        seen.add(extra)
        for requirement in optional[extra]:
            match = _SELF_REFERENCE.match(requirement)
            if match and _canonical(match["name"]) == own_name:
                for inner in match["extras"].split(","):
                    add(inner.strip())
            elif requirement not in result:
                result.append(requirement)

    result.extend(project.get("dependencies", []))
    for extra in extras:
        add(extra)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print the requirements, one a line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("extras", nargs="+")
    parser.add_argument("--without", action="append", default=[], help="an extra to leave out (repeatable)")
    parser.add_argument("--only", default=None, help="print only the requirement on this distribution")
    args = parser.parse_args(argv)
    lines = requirements(args.pyproject, args.extras, set(args.without))
    if args.only is not None:
        lines = [line for line in lines if (m := _NAME.match(line)) and _canonical(m[1]) == _canonical(args.only)]
        if not lines:
            raise SystemExit(f"no requirement on {args.only!r} in extras {args.extras}")
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
