from __future__ import annotations

from support.models import speak, word_error_rate


def test_word_error_rate() -> None:
    assert word_error_rate("Hello, world!", "hello world") == 0.0
    assert word_error_rate("the cat sat", "the cat sat down") == 1 / 3
    assert word_error_rate("a b c d", "a x c") == 0.5


def test_piper_speaks_real_audio() -> None:
    audio = speak("Good morning, how are you today?")
    assert 1.0 < audio.size / 16_000 < 5.0
    assert float(abs(audio).max()) > 0.1
