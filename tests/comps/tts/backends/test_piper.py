"""The real Piper voice: speech of sensible length, speed through the length scale, voices from a folder."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from support.models import piper_voice_paths

from comps.tts.backends.base import VoiceError
from comps.tts.backends.piper import PiperBackend, find_piper_voices


def test_each_chunk_becomes_speech_at_the_voice_rate(piper_backend: PiperBackend) -> None:
    audio = piper_backend.synthesize(
        ["Hello there.", "This second chunk is a good deal longer."], voice="default", speed=1.0
    )
    assert piper_backend.sample_rate == 22_050
    assert [a.dtype for a in audio] == [np.float32, np.float32]
    short_s, long_s = (a.size / piper_backend.sample_rate for a in audio)
    # Speech runs at roughly 2-4 words per second.
    assert 0.4 < short_s < 2.5
    assert 1.5 < long_s < 5.0
    assert all(np.abs(a).max() > 0.3 for a in audio)  # speech, not silence


def test_speed_scales_duration_through_the_length_scale(piper_backend: PiperBackend) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    slow, normal, fast = (piper_backend.synthesize([text], voice="default", speed=s)[0] for s in (0.5, 1.0, 2.0))
    assert slow.size > normal.size > fast.size
    # Length scale 4x apart gives ~2.8x in audio (measured 2.75-2.95 over 30 runs): VITS rounds each
    # phoneme's duration up, and the durations are sampled with noise, hence the margin.
    assert 2.2 < slow.size / fast.size < 5.0


def test_a_chunk_without_speakable_text_gives_empty_audio(piper_backend: PiperBackend) -> None:
    assert piper_backend.synthesize(["?!"], voice="default", speed=1.0)[0].size == 0


def test_voices_dir_lists_every_onnx_with_its_config(tmp_path) -> None:
    paths = piper_voice_paths()
    shutil.copy(paths.model, tmp_path / "narrator.onnx")
    shutil.copy(paths.config, tmp_path / "narrator.onnx.json")
    voices = find_piper_voices(tmp_path)
    assert list(voices) == ["narrator"]
    assert voices["narrator"].config == tmp_path / "narrator.onnx.json"
    (tmp_path / "broken.onnx").write_bytes(b"")
    with pytest.raises(VoiceError, match=r"broken.onnx has no config broken.onnx.json"):
        find_piper_voices(tmp_path)


def test_voices_list_default_first(piper_backend: PiperBackend) -> None:
    assert piper_backend.voices == ["default", "en_US-joe-medium"]


def test_an_unloadable_voice_file_is_named(tmp_path) -> None:
    paths = piper_voice_paths()
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx model")
    shutil.copy(paths.config, tmp_path / "bad.onnx.json")
    with pytest.raises(VoiceError, match=r"bad\.onnx could not be loaded"):
        PiperBackend(voices=find_piper_voices(tmp_path) | {"default": find_piper_voices(tmp_path)["bad"]})
