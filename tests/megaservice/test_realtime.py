"""The real-time answer's relay of speech to the lip-sync stream, over a real socket."""

from __future__ import annotations

import base64
from pathlib import Path

import anyio
import numpy as np
import pytest
from support.models import speak
from support.servers import Served
from support.wav2lip_weights import write_checkpoint

from comps.animation.app import create_app
from comps.animation.settings import AnimationSettings
from comps.animation.wav2lip.mel import frame_count
from comps.core.audio import encode_wav
from comps.core.concurrency import UNBOUNDED
from comps.core.contracts import TtsResponse
from megaservice.lipsync import open_lipsync
from megaservice.realtime import relay
from megaservice.service import MicroService

SR = 16_000
pytestmark = pytest.mark.anyio


def chunk(samples: np.ndarray) -> TtsResponse:
    return TtsResponse(tts_result=base64.b64encode(encode_wav(samples, SR)).decode())


async def test_a_slow_answer_keeps_its_lip_sync_stream_past_the_services_keepalive(
    tmp_path: Path, shared_dir: Path
) -> None:
    settings = AnimationSettings(
        device="cpu", checkpoint_path=write_checkpoint(tmp_path / "wav2lip.pth"), model_cache_dir=tmp_path / "cache",
        offline=True, face=shared_dir / "assets" / "avatar_astronaut.png", avatar_dir=tmp_path / "avatars",
        output_dir=tmp_path / "videos", fps=25.0, batch_size=8,
    )  # fmt: skip
    speech = speak("Paris is the capital of France.")[: int(0.8 * SR)]
    # The service pings every 0.2 s and drops a client that has not answered within 0.2 s; the answer's
    # second chunk comes 1.5 s after its first (an LLM writing slowly on a busy CPU).
    with Served(create_app(settings), ws_ping_interval=0.2, ws_ping_timeout=0.2) as served:
        node = MicroService(name="animation", host="127.0.0.1", port=served.port, timeout_s=120)
        lipsync = await open_lipsync(base_url=served.url, app=None, options={}, connect_timeout_s=5)
        send, speech_chunks = anyio.create_memory_object_stream[TtsResponse](UNBOUNDED)
        done: dict[str, object] = {}
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(relay, speech_chunks, lipsync, done, node)
                send.send_nowait(chunk(speech[: SR * 4 // 10]))
                await anyio.sleep(1.5)
                send.send_nowait(chunk(speech[SR * 4 // 10 :]))
                send.close()
        finally:
            await lipsync.aclose()
    assert done["frames"] == frame_count(speech.size, 25.0)
    assert Path(str(done["video_path"])).is_file()
