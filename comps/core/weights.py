"""Weight resolution: an explicit local path, then the model cache, then a download; offline, a clear error.

A missing weight never falls back to anything else: the error names the file, every place
searched, and the `avatarchat download <component>` command that fetches it.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


class WeightsMissingError(FileNotFoundError):
    """A model file is not on disk and cannot be downloaded here.

    Besides the message, the parts a preflight table shows (each may be unknown): `what` is missing,
    the places `searched`, the `command` that fetches it and the `setting` that can point at a copy.
    """

    def __init__(
        self,
        message: str,
        *,
        what: str | None = None,
        searched: tuple[Path, ...] = (),
        command: str | None = None,
        setting: str | None = None,
    ) -> None:
        super().__init__(message)
        self.what = what
        self.searched = searched
        self.command = command
        self.setting = setting


@dataclass(frozen=True)
class WeightSpec:
    """Where one weight file comes from.

    Attributes:
        component: the `avatarchat download <component>` name that fetches it.
        filename: the file name inside the cache folder (and inside the Hugging Face repo).
        hf_repo: a Hugging Face repo id holding `filename`, or None.
        url: a direct release URL, or None.
        sha256: expected digest for URL downloads (checked after download).
    """

    component: str
    filename: str
    hf_repo: str | None = None
    url: str | None = None
    sha256: str | None = None

    def cache_path(self, cache_dir: Path) -> Path:
        """The file's place inside the model cache."""
        return cache_dir / self.component / self.filename


def resolve_weight(
    spec: WeightSpec, *, explicit: Path | None, cache_dir: Path, offline: bool, setting: str | None = None
) -> Path:
    """Find a weight file, downloading it into the cache when allowed.

    Args:
        spec: what to find.
        explicit: a path set by the operator; a file, or a folder holding `spec.filename`.
        cache_dir: the model cache root.
        offline: never try the network.
        setting: the variable that can point at a local copy, named when the file is missing.

    Raises:
        WeightsMissingError: with the file name, the places searched and how to get it.
    """
    searched: list[Path] = []
    if explicit is not None:
        candidate = explicit / spec.filename if explicit.is_dir() else explicit
        searched.append(candidate)
        if candidate.is_file():
            return candidate
    cached = spec.cache_path(cache_dir)
    searched.append(cached)
    if cached.is_file():
        return cached
    if offline or (spec.hf_repo is None and spec.url is None):
        reason = "offline mode" if offline else "no download source is known"
        raise _missing(spec, searched, reason=reason, setting=setting)
    try:
        return download(spec, cache_dir=cache_dir)
    except OSError as exc:
        raise _missing(spec, searched, reason=f"download failed: {exc}", setting=setting) from exc


def _missing(spec: WeightSpec, searched: list[Path], *, reason: str, setting: str | None = None) -> WeightsMissingError:
    places = ", ".join(str(p) for p in searched)
    source = spec.hf_repo and f"Hugging Face repo {spec.hf_repo}" or spec.url or "its publisher"
    command = f"avatarchat download {spec.component}"
    return WeightsMissingError(
        f"weight file {spec.filename!r} not found ({reason}); searched: {places}. "
        f"Fetch it with `{command}` on a machine with network access "
        f"(source: {source}), or point {setting or 'the service checkpoint setting'} at a local copy.",
        what=spec.filename,
        searched=tuple(searched),
        command=command,
        setting=setting,
    )


def download(spec: WeightSpec, *, cache_dir: Path) -> Path:
    """Download `spec` into the cache (with a progress bar) and return its path."""
    target = spec.cache_path(cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    if spec.hf_repo is not None:
        from huggingface_hub import hf_hub_download

        fetched = Path(hf_hub_download(repo_id=spec.hf_repo, filename=spec.filename))
        shutil.copyfile(fetched, target)
        return target
    assert spec.url is not None
    return _download_url(spec.url, target, spec.sha256)


def _download_url(url: str, target: Path, sha256: str | None) -> Path:
    from tqdm import tqdm

    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - release URLs we list
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                    while chunk := response.read(1 << 20):
                        tmp.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
    if sha256 is not None and digest.hexdigest() != sha256:
        tmp_path.unlink(missing_ok=True)
        raise OSError(f"sha256 mismatch for {url}: expected {sha256}, got {digest.hexdigest()}")
    tmp_path.replace(target)
    return target


def resolve_snapshot(repo_id: str, *, component: str, explicit: Path | None, cache_dir: Path, offline: bool) -> Path:
    """Resolve a whole Hugging Face model folder (config + weights) the same way as a single file."""
    searched: list[Path] = []
    if explicit is not None:
        searched.append(explicit)
        if explicit.is_dir():
            return explicit
    local = cache_dir / component / repo_id.replace("/", "--")
    searched.append(local)
    if local.is_dir() and any(local.iterdir()):
        return local
    spec = WeightSpec(component=component, filename=repo_id, hf_repo=repo_id)
    if offline:
        raise _missing(spec, searched, reason="offline mode")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=repo_id, local_dir=local))
    except Exception as exc:  # huggingface_hub raises many unrelated types for "no network"
        raise _missing(spec, searched, reason=f"download failed: {type(exc).__name__}: {exc}") from exc
