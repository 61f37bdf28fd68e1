"""The audio front end against audio/ (mel, mel windows, 25 fps indexing)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from comps.animation.sadtalker import audio


def test_mel_basis_matches_upstream(npy: Callable[[str], np.ndarray]) -> None:
    assert np.abs(audio.mel_basis() - npy("audio/mel_basis.npy")).max() < 1e-7


def test_melspectrogram_matches_zero_padded_reference(npy: Callable[[str], np.ndarray]) -> None:
    mel = audio.melspectrogram(npy("audio/in_wav.npy"))
    expected = npy("audio/out_mel.npy")
    assert mel.shape == expected.shape == (132, 80)
    assert np.abs(mel - expected).max() < 1e-5
    # Reflect padding (old librosa) differs at the edges: this would catch the wrong padding.
    assert np.abs(mel - npy("audio/out_mel_reflectpad.npy")).max() > 0.1


def test_indiv_mels_match(npy: Callable[[str], np.ndarray]) -> None:
    mel, windows = audio.audio_features(npy("audio/in_wav.npy"))
    expected = npy("audio/out_indiv_mels.npy")  # (1, 41, 1, 80, 16)
    assert windows.shape == (41, 80, 16)
    assert np.abs(windows - expected[0, :, 0]).max() < 1e-5


def test_window_starts_follow_facts(fixture_dir: Path) -> None:
    facts = json.loads((fixture_dir / "audio" / "facts.json").read_text())
    starts = facts["window_start_index_per_video_frame_before_clamp"]
    assert [audio.window_start(i) for i in range(len(starts))] == starts
    # The float formula of upstream, truncated toward zero, agrees far out.
    assert all(audio.window_start(i) == int(80.0 * ((i - 2) / 25.0)) for i in range(0, 20_000, 7))


def test_frame_count_and_crop_pad() -> None:
    assert audio.num_video_frames(26_240) == 41
    assert audio.num_video_frames(639) == 0
    wav = np.ones(1_000, dtype=np.float32)
    assert audio.crop_or_pad(wav).shape == (640,)
    mel, windows = audio.audio_features(np.ones(16_000, dtype=np.float32))
    assert mel.shape == (1 + 16_000 // 200, 80)
    assert windows.shape == (25, 80, 16)
    # The first window repeats mel frame 0 (indices -6..-1 clamp to 0).
    assert np.array_equal(windows[0][:, :7], np.repeat(mel[0][:, None], 7, axis=1))
