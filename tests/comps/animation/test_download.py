"""`avatarchat download wav2lip|gfpgan|sadtalker`: what each fetches, from where, and a real fetch into the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from comps.animation import download
from comps.core.weights import WeightSpec


@pytest.fixture(autouse=True)
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("ANIMATION_CHECKPOINT_DIR", "GFPGAN_MODEL_VERSION", "ANIMATION_GFPGAN_MODEL_VERSION"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


def test_cached_files_are_returned_without_a_download(cache: Path) -> None:
    for name in ("wav2lip.pth", "wav2lip_gan.pth"):
        (cache / "wav2lip").mkdir(parents=True, exist_ok=True)
        (cache / "wav2lip" / name).write_bytes(b"weights")
    assert download.download_wav2lip() == [cache / "wav2lip" / "wav2lip.pth", cache / "wav2lip" / "wav2lip_gan.pth"]


def test_sadtalker_files_come_from_the_v002_release() -> None:
    names = [spec.filename for spec in download.SADTALKER]
    assert names == [
        "SadTalker_V0.0.2_256.safetensors",
        "SadTalker_V0.0.2_512.safetensors",
        "mapping_00229-model.pth.tar",
        "mapping_00109-model.pth.tar",
    ]
    for spec in download.SADTALKER:
        assert spec.url == f"https://github.com/OpenTalker/SadTalker/releases/download/v0.0.2-rc/{spec.filename}"


def test_gfpgan_follows_the_model_version(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setenv("GFPGAN_MODEL_VERSION", "1.3")
    for name in ("GFPGANv1.3.pth", "detection_Resnet50_Final.pth"):
        (cache / "gfpgan").mkdir(parents=True, exist_ok=True)
        (cache / "gfpgan" / name).write_bytes(b"weights")
    assert [p.name for p in download.download_gfpgan()] == ["GFPGANv1.3.pth", "detection_Resnet50_Final.pth"]


def test_a_missing_file_is_downloaded_into_the_cache(
    monkeypatch: pytest.MonkeyPatch, cache: Path, tmp_path: Path
) -> None:
    # A file:// URL goes through the same urllib download code as the release URL, without network.
    release = tmp_path / "release"
    release.mkdir()
    specs = []
    for spec in download.SADTALKER:
        (release / spec.filename).write_bytes(spec.filename.encode())
        specs.append(
            WeightSpec(component=spec.component, filename=spec.filename, url=(release / spec.filename).as_uri())
        )
    monkeypatch.setattr(download, "SADTALKER", tuple(specs))
    paths = download.download_sadtalker()
    assert paths == [cache / "sadtalker" / s.filename for s in specs]
    assert all(p.read_bytes() == p.name.encode() for p in paths)
