"""The speech distance tells the same words spoken twice by Piper (sampled anew each time) from other words."""

from __future__ import annotations

from support.models import speak
from support.speech_match import SAME_SPEECH_MAX, mel_frames, speech_distance


def test_the_same_sentence_spoken_twice_is_near_and_another_sentence_far() -> None:
    paris, again = (
        mel_frames(speak("The capital of France is Paris.")),
        mel_frames(speak("The capital of France is Paris.")),
    )
    rome = mel_frames(speak("The capital of Italy is Rome."))
    assert speech_distance(paris, again) <= SAME_SPEECH_MAX < speech_distance(paris, rome)
    assert speech_distance(paris, paris) < 1e-6  # zero but for rounding
