"""Wav2Lip's audio front-end: the golden mel spectrogram and the frame <-> mel-window indexing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from comps.animation.wav2lip.mel import frame_count, mel_windows, melspectrogram, window_starts


def test_golden_mel(shared_dir: Path) -> None:
    folder = shared_dir / "fixtures" / "wav2lip"
    mel = melspectrogram(np.load(folder / "mel_in_wav.npy"))
    expected = np.load(folder / "mel_out.npy")
    assert mel.shape == expected.shape == (80, 101)
    assert mel.dtype == np.float32
    np.testing.assert_allclose(mel, expected, atol=1e-4, rtol=0)


def test_reflect_padding_not_zero_padding(shared_dir: Path) -> None:
    # Zero padding (later librosa) changes the first and last two frames; the fixture pins reflect.
    wav = np.load(shared_dir / "fixtures" / "wav2lip" / "mel_in_wav.npy")
    expected = np.load(shared_dir / "fixtures" / "wav2lip" / "mel_out.npy")
    mel = melspectrogram(wav)
    np.testing.assert_allclose(mel[:, :2], expected[:, :2], atol=1e-4, rtol=0)
    np.testing.assert_allclose(mel[:, -2:], expected[:, -2:], atol=1e-4, rtol=0)


def test_silence_is_the_floor() -> None:
    mel = melspectrogram(np.zeros(16_000, np.float32))
    assert mel.shape == (80, 81)
    assert np.all(mel == -4.0)


@pytest.mark.parametrize("fps", [25.0, 30.0, 29.97, 24.0, 60.0, 12.5])
def test_window_starts_follow_upstream_and_clamp_the_last(fps: float) -> None:
    n_mel = 161  # 2 s of audio
    n_frames = frame_count(32_000, fps)
    starts = window_starts(n_frames, n_mel, fps)
    assert n_frames == round(2 * fps)
    for i, start in enumerate(starts):
        upstream = int(i * 80 / fps)
        assert start == (upstream if upstream + 16 <= n_mel else n_mel - 16)
    assert starts[-1] == n_mel - 16  # the last window is the final 16 frames
    assert np.all(np.diff(starts) >= 0)


def test_mel_windows_shape_and_content() -> None:
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(24_000)).astype(np.float32)  # 1.5 s
    windows = mel_windows(wav, 25.0)
    mel = melspectrogram(wav)
    assert windows.shape == (38, 1, 80, 16)  # round(1.5 * 25) frames
    np.testing.assert_array_equal(windows[5, 0], mel[:, 16:32])  # int(5 * 3.2) = 16
    np.testing.assert_array_equal(windows[-1, 0], mel[:, -16:])


def test_very_short_audio_still_gives_one_window() -> None:
    windows = mel_windows(np.zeros(500, np.float32), 25.0)
    assert windows.shape == (1, 1, 80, 16)
    assert np.all(windows == -4.0)


def test_rejects_bad_fps() -> None:
    with pytest.raises(ValueError, match="fps"):
        window_starts(3, 100, 0.0)
