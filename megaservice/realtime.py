"""The real-time answer: LLM tokens -> short first clause, then sentences -> TTS per chunk -> ONE lip-sync stream.

The lip-sync stream is opened before the question is even heard, so its video id (and the URL that
streams the growing fragmented MP4) is known at once. Each synthesized chunk's speech goes to the
stream in order as soon as it exists; the animation service turns it into frames as each frame's
200 ms of look-ahead arrives. Back-pressure: at most `tts_concurrency` chunks are synthesized ahead
of the one being sent, and the stream's render follows the playback clock (see
`comps.animation.live`).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
import numpy.typing as npt
from anyio.streams.memory import MemoryObjectReceiveStream

from comps.core.audio import decode_audio
from comps.core.concurrency import UNBOUNDED, task_group
from comps.core.contracts import TtsResponse
from comps.core.upstream import deadline_error
from megaservice.lipsync import LipSyncStream, open_lipsync
from megaservice.orchestrator import ServiceOrchestrator
from megaservice.progress import ProgressObserver, ProgressTracker, VideoStarted
from megaservice.records import NodeEvent, RuntimeGraph
from megaservice.service import MicroService

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class StreamedAnswer:
    """A finished real-time answer: the graph that ran, the video's id, length and the seconds it took."""

    runtime_graph: RuntimeGraph
    video_id: str
    duration_s: float
    frames: int
    animation_s: float


def speech_samples(tts: TtsResponse) -> npt.NDArray[np.float32]:
    """Blocking: the chunk's WAV as 16 kHz mono samples."""
    return decode_audio(base64.b64decode(tts.tts_result), sample_rate=SAMPLE_RATE)


async def stream_answer(
    graph: ServiceOrchestrator,
    animation: MicroService,
    *,
    inputs: Any,
    params: Any,
    provided: dict[str, Any],
    lipsync_options: dict[str, Any],
    observer: ProgressObserver,
    connect_timeout_s: float,
) -> StreamedAnswer:
    """Run asr -> llm -> tts on `graph` and lip-sync the speech on one stream as it is spoken."""
    started = time.perf_counter()
    lipsync = await open_lipsync(
        base_url=animation.base_url,
        app=animation.app,
        options=lipsync_options,
        connect_timeout_s=connect_timeout_s,
        headers=animation.headers,
        timeout_s=animation.timeout_s,
    )
    try:
        observer(VideoStarted(lipsync.id))
        tracker = ProgressTracker(observer)
        spoken, speech = anyio.create_memory_object_stream[TtsResponse](UNBOUNDED)
        done: dict[str, Any] = {}

        def watch(event: NodeEvent) -> None:
            tracker(event)
            if event.node == "tts" and event.kind == "item":
                assert isinstance(event.value, TtsResponse)
                spoken.send_nowait(event.value)  # in answer order: the stream edge emits in order

        async def answer() -> None:
            async with spoken:
                _, runtime = await graph.schedule(inputs, params, provided=provided, observer=watch)
            graphs.append(runtime)

        graphs: list[RuntimeGraph] = []
        async with task_group() as group:
            group.start_soon(answer)
            group.start_soon(relay, speech, lipsync, done, animation)
        return StreamedAnswer(
            runtime_graph=graphs[0],
            video_id=lipsync.id,
            duration_s=float(done.get("duration_s") or 0.0),
            frames=int(done.get("frames") or 0),
            animation_s=time.perf_counter() - started,
        )
    finally:
        await lipsync.aclose()


async def relay(
    speech: MemoryObjectReceiveStream[TtsResponse], lipsync: LipSyncStream, done: dict[str, Any], node: MicroService
) -> None:
    """Send each chunk's speech to the lip-sync stream as it comes, then end it; its `done` record into `done`.

    The record is awaited from the start, not once the speech has ended: a pending receive answers
    the service's WebSocket keepalive pings (uvicorn drops a client that leaves them unanswered for
    40 s, and an answer whose LLM writes slowly on a busy CPU lasts longer), and an `error` event
    stops the answer when it comes. The wait after the end is bounded by the node's timeout.
    """

    async def wait_done() -> None:
        done.update(await lipsync.wait_done())

    async with task_group() as group:
        group.start_soon(wait_done)
        async with speech:
            async for chunk in speech:
                await lipsync.speak(await anyio.to_thread.run_sync(speech_samples, chunk))
        await lipsync.send_end()
        group.cancel_scope.deadline = anyio.current_time() + node.timeout_s
    if not done:  # the deadline cancelled the wait
        raise deadline_error(node.name, node.timeout_s)
