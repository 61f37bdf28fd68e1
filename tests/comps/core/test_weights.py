from __future__ import annotations

from pathlib import Path

import pytest

from comps.core.weights import WeightsMissingError, WeightSpec, resolve_snapshot, resolve_weight

SPEC = WeightSpec(component="wav2lip", filename="wav2lip_gan.pth", hf_repo="someone/wav2lip")


def test_explicit_file_wins(tmp_path: Path) -> None:
    explicit = tmp_path / "mine.pth"
    explicit.write_bytes(b"x")
    assert resolve_weight(SPEC, explicit=explicit, cache_dir=tmp_path / "cache", offline=True) == explicit


def test_explicit_folder_holding_the_file(tmp_path: Path) -> None:
    (tmp_path / "wav2lip_gan.pth").write_bytes(b"x")
    assert (
        resolve_weight(SPEC, explicit=tmp_path, cache_dir=tmp_path / "c", offline=True) == tmp_path / "wav2lip_gan.pth"
    )


def test_cache_is_second(tmp_path: Path) -> None:
    cached = SPEC.cache_path(tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert resolve_weight(SPEC, explicit=tmp_path / "absent.pth", cache_dir=tmp_path, offline=True) == cached


def test_offline_error_names_file_places_and_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError) as err:
        resolve_weight(SPEC, explicit=tmp_path / "absent.pth", cache_dir=tmp_path / "cache", offline=True)
    message = str(err.value)
    assert "wav2lip_gan.pth" in message
    assert str(tmp_path / "absent.pth") in message
    assert str(tmp_path / "cache" / "wav2lip" / "wav2lip_gan.pth") in message
    assert "avatarchat download wav2lip" in message


def test_unreachable_url_is_the_same_clear_error(tmp_path: Path) -> None:
    spec = WeightSpec(component="gfpgan", filename="GFPGANv1.4.pth", url="http://127.0.0.1:9/GFPGANv1.4.pth")
    with pytest.raises(WeightsMissingError, match="avatarchat download gfpgan"):
        resolve_weight(spec, explicit=None, cache_dir=tmp_path, offline=False)
    assert not any(tmp_path.rglob("tmp*")), "a failed download leaves no partial file"


def test_snapshot_offline(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError, match="avatarchat download llm"):
        resolve_snapshot("Qwen/Qwen2.5-0.5B-Instruct", component="llm", explicit=None, cache_dir=tmp_path, offline=True)
    local = tmp_path / "model"
    local.mkdir()
    assert resolve_snapshot("x/y", component="llm", explicit=local, cache_dir=tmp_path, offline=True) == local
