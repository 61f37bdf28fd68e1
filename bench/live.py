"""Live-mode benchmark: end of speech -> first answer audio and first lip-synced frame, barge-in, frames delivered.

Run: .venv/bin/python bench/live.py [--questions 4] [--barge-ins 3] [--max-tokens 48]

The four services run as their own processes, as `make run` starts them (the same set-up as
`bench/realtime.py`: faster-whisper tiny.en, SmolLM2-135M-Instruct, Piper joe, Wav2Lip with the
deterministic fixture weights on the astronaut, 25 fps); the gateway runs in this process and an
aiortc client talks to it over real UDP, its microphone fed with Piper's spoken questions.
Measured side by side in one run:

- live: the end of the person's speech (its last voiced 20 ms frame sent) -> the first answer audio
  frame with sound and the first video frame that differs from the idle avatar, at the client;
  p50 and p90 over the questions;
- HTTP: the same spoken question to `POST /v1/avatarchatbot/stream` -> its first video fragment;
- barge-in: the voice onset of a second utterance spoken over an answer -> the `interrupted` event at
  the client (the answer's queued speech is dropped then), and the answer's last sound after it;
- frames delivered / frames expected at 25 fps over the whole live session, the stalls (answer slots
  whose frame was not ready, so the last one was held) and the render rate the gateway settled on.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from realtime import FPS, streamed, with_services  # type: ignore[import-not-found]

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.models import speak  # type: ignore[import-not-found]  # noqa: E402

from comps.core.audio import encode_wav  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.live.client import LiveClient, Received, differs  # noqa: E402
from gateway.settings import GatewaySettings  # noqa: E402
from megaservice.asgi import StreamingASGITransport  # noqa: E402

QUESTIONS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What colour is the sky on a clear day?",
    "Who wrote Romeo and Juliet?",
    "What is the largest ocean on Earth?",
    "Why do we need to sleep?",
]
LONG = "Tell me a long story about a sailor and the sea."
CUT = "Wait, stop, tell me about the mountains instead."
SILENT_RMS = 0.01


def peer(app: Any) -> Any:
    """The gateway's one live session."""
    return next(iter(app.state.live.peers.values()))


def first_after(items: list[tuple[float, float]], since: float) -> float | None:
    return next((at for at, _ in items if at > since), None)


def voiced(received: Received) -> list[tuple[float, float]]:
    return [(at, pts) for at, pts, rms in received.audio if rms > SILENT_RMS]


def lip_synced(received: Received, idle: np.ndarray) -> list[tuple[float, float]]:
    return [(at, pts) for at, pts, gray in received.video if gray.size and differs(gray, idle)]


async def until(condition, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the live session did not get there in time")
        await asyncio.sleep(0.02)


def states(received: Received) -> list[tuple[float, str]]:
    return [(at, event["state"]) for at, event in received.events_of("state")]


def stages(received: Received, end: float) -> list[tuple[str, float]]:
    """When each event of the turn after `end` arrived: turn end heard, transcript, first text, speaking."""
    marks = [("turn ended", "state", "thinking"), ("transcript", "transcript", None), ("first text", "answer", None),
             ("speaking", "state", "speaking")]  # fmt: skip
    found = []
    for name, kind, state in marks:
        times = [at for at, e in received.events_of(kind) if at > end and (state is None or e.get("state") == state)]
        if times:
            found.append((name, times[0]))
    return found


async def answered(live: LiveClient, since: float) -> None:
    """Wait until the answer after `since` has been spoken to its end (speaking, then listening)."""
    def done() -> bool:
        after = [state for at, state in states(live.received) if at > since]
        return "speaking" in after and after[-1] == "listening"

    await until(done, 180)
    await asyncio.sleep(0.3)


async def live_runs(args: argparse.Namespace, http: httpx.AsyncClient, app: object) -> None:
    live = LiveClient("http://gw")
    await live.connect(http)
    received = live.received
    await until(lambda: len(received.video) >= 10, 30)
    audio_delays, video_delays = [], []
    for question in QUESTIONS[: args.questions]:
        utterance = live.microphone.say(speak(question))
        await until(lambda u=utterance: u.done, 60)
        await answered(live, utterance.voice_end)
        end = utterance.voice_end
        # The idle avatar as the client saw it just before the answer (the encoder's quality settles at first).
        idle = next(gray for at, _, gray in reversed(received.video) if gray.size and at < end)
        first_audio, first_frame = first_after(voiced(received), end), first_after(lip_synced(received, idle), end)
        heard = [e["text"] for at, e in received.events_of("transcript") if at > end][:1]
        print(f"  live  {question!r}: heard {heard}, first audio {first_audio - end:5.2f} s, "  # type: ignore[operator]
              f"first lip-synced frame {first_frame - end:5.2f} s")  # type: ignore[operator]  # fmt: skip
        marks = ", ".join(f"{name} {at - end:4.2f} s" for name, at in stages(received, end))
        inside = ", ".join(f"{name} {seconds:4.2f} s" for name, seconds in peer(app).conversation.timings.items())
        print(f"        after the end of speech: {marks}; in the gateway, from the answer's start: {inside}")
        audio_delays.append(first_audio - end)  # type: ignore[operator]
        video_delays.append(first_frame - end)  # type: ignore[operator]
        received.video[:] = [(at, pts, gray if i % 25 == 0 else gray[:0]) for i, (at, pts, gray) in
                             enumerate(received.video)]  # fmt: skip  (keep memory bounded)
    stops = []
    for _ in range(args.barge_ins):
        utterance = live.microphone.say(speak(LONG))
        await until(lambda u=utterance: u.done, 60)
        await until(lambda u=utterance: first_after(voiced(received), u.voice_end) is not None, 180)
        await asyncio.sleep(1.0)  # the avatar is well into its answer
        cut = live.microphone.say(speak(CUT))
        await until(lambda c=cut: c.done, 60)
        onset = cut.voice_onset
        cut_at = next((at for at, _ in received.events_of("interrupted") if at > onset), None)
        before_next = [at for at, state in states(received) if state == "thinking" and at > onset]
        limit = before_next[0] if before_next else time.monotonic()
        last = max((at for at, _ in voiced(received) if onset < at < limit), default=onset)
        if cut_at is None:
            print("  barge-in: no interruption (the answer had ended already)")
        else:
            stops.append(cut_at - onset)
            print(f"  barge-in: interrupted {cut_at - onset:5.2f} s after the voice onset; the answer's last sound "
                  f"{last - onset:5.2f} s after it")  # fmt: skip
        await answered(live, cut.voice_end)
    span = received.video[-1][0] - received.video[0][0]
    delivered = len(received.video) / (span * FPS + 1)
    stalls, rate = peer(app).timeline.total_stalls, peer(app).render_rate.fps
    await live.close()

    def p(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")

    print(f"live: end of speech -> first answer audio  p50 {p(audio_delays, 50):5.2f} s  "
          f"p90 {p(audio_delays, 90):5.2f} s   (goal <= 1.5)")  # fmt: skip
    print(f"live: end of speech -> first lip-synced frame  p50 {p(video_delays, 50):5.2f} s  "
          f"p90 {p(video_delays, 90):5.2f} s   (goal <= 1.5)")  # fmt: skip
    print(f"live: barge-in stop  p50 {p(stops, 50):5.2f} s  max {max(stops, default=float('nan')):5.2f} s"
          f"   (goal <= 0.3)")  # fmt: skip
    print(f"live: frames delivered / expected at {FPS:g} fps {delivered:5.3f}   (goal >= 0.98); "
          f"answer frames held (stalls): {stalls} ({stalls / FPS:.2f} s); lip-sync rendered at {rate:g} fps at the end")


async def http_runs(args: argparse.Namespace, client: httpx.AsyncClient) -> None:
    firsts = []
    for question in QUESTIONS[: args.questions]:
        audio = base64.b64encode(encode_wav(speak(question), 16_000)).decode()
        first, stalled, total = await streamed(client, {"audio": audio, "max_tokens": args.max_tokens})
        firsts.append(first)
        print(f"  http  {question!r}: first fragment {first:5.2f} s, stalls {stalled:5.2f} s, total {total:5.2f} s")
    print(f"http stream: spoken question submitted -> first video fragment  p50 {statistics.median(firsts):5.2f} s")


async def run(args: argparse.Namespace, ports: dict[str, int]) -> None:
    hosts = {f"{stage}_host": "127.0.0.1" for stage in ports}
    settings = GatewaySettings(
        **hosts, **{f"{s}_port": p for s, p in ports.items()}, max_tokens=args.max_tokens, live_max_sessions=1,
        log_level="WARNING",
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = StreamingASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=None) as client:
            await client.post("/v1/avatarchatbot", json={"text": "Hello.", "max_tokens": 8})  # warm-up
            await live_runs(args, client, app)
            if not args.no_http:
                await http_runs(args, client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--barge-ins", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP streamed answers")
    parser.add_argument("--llm", default=None, help="LLM_MODEL_ID (a folder or a .gguf file)")
    with_services(parser.parse_args(), run, prefix="bench-live-")

if __name__ == "__main__":
    main()
