"""`avatarchat download llm`: fetch LLM_MODEL_ID into the model cache once, before the service starts."""

from __future__ import annotations

from pathlib import Path

from comps.core.settings import load_settings
from comps.core.weights import resolve_snapshot
from comps.llm.settings import LlmSettings


def model_folder(settings: LlmSettings) -> Path:
    """The local folder of LLM_MODEL_ID: the folder itself, else the cache, else a Hugging Face download.

    Raises:
        comps.core.weights.WeightsMissingError: offline or unreachable, naming the model and places searched.
    """
    explicit = Path(settings.model_id).expanduser()
    return resolve_snapshot(
        settings.model_id,
        component="llm",
        explicit=explicit if explicit.is_dir() else None,
        cache_dir=settings.model_cache_dir,
        offline=settings.offline,
    )


def download_llm(settings: LlmSettings | None = None) -> list[Path]:
    """Snapshot LLM_MODEL_ID (a Hugging Face id) into the cache; a local folder is used as it is.

    Returns the model folder (nothing for the openai backend: the upstream server holds the model).
    Offline, or when the hub cannot be reached, raises `comps.core.weights.WeightsMissingError`.
    """
    settings = settings or load_settings(LlmSettings)
    if settings.backend == "openai":
        return []
    return [model_folder(settings)]
