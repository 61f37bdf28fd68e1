"""Load with real processes: 32 different questions sent to the gateway at once, on the real small models.

Every question is answered exactly once (refused ones get 503 + Retry-After in the envelope and are asked
again after it), every answer's video carries its own speech and no other answer's, no service did any
answer's work twice, and each service's peak memory stays under a fixed ceiling.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from support.metrics import sample
from support.models import speak_wav
from support.process_stack import SERVICES, ProcessStack
from support.reliability import record
from support.speech_match import SAME_SPEECH_MAX, mel_frames, speech_distance

from comps.core.audio import decode_audio

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What is the capital of France?", "Why is the sky blue?", "How many legs does a spider have?",
    "What is photosynthesis?", "Who wrote Romeo and Juliet?", "What is the largest ocean on Earth?",
    "How do bees make honey?", "What is the boiling point of water?", "Why do cats purr?",
    "What is the speed of light?", "How do airplanes fly?", "What is a black hole?", "What causes rain?",
    "What is the tallest mountain in the world?", "How does a rainbow form?", "What do pandas eat?",
    "What is gravity?", "Who painted the Mona Lisa?", "What is the chemical symbol for gold?",
    "How many planets are in the solar system?", "Why do leaves change color in autumn?",
    "What is the longest river in Africa?", "How do volcanoes erupt?", "What language is spoken in Brazil?",
    "How do fish breathe underwater?", "What is a computer virus?", "What is the smallest prime number?",
    "Why is the ocean salty?", "Which instrument has eighty-eight keys?", "How long is a day on Mars?",
    "What are clouds made of?", "What is the hardest natural substance?",
]  # fmt: skip
SPOKEN = {1, 17}  # these two are asked aloud (ASR runs); the rest typed
FPS = 5.0  # the speech is what is checked here; 5 frames a second keep the 32 renders cheap on two cores
ANSWER = {"max_tokens": 10, "fps": FPS, "detailed": True}
# Two pipelines at once and six waiting: the other 24 of the first 32 are refused with 503 + Retry-After.
GATEWAY_ENV = {"GATEWAY_MAX_CONCURRENCY": "2", "GATEWAY_MAX_QUEUE": "6"}
RSS_CEILING = 3 * 2**30
"""Per service: the suite runs on a 24 GiB machine beside its own test process; five processes of this stack
at 3 GiB each still leave it room (measured here: the LLM ~1.7 GiB, animation ~1.4 GiB, the others < 0.5)."""
# The same text spoken twice by Piper differs in length by up to ~70 ms (its durations are sampled); the
# track is cut to whole frames (1 / FPS) and carries up to one AAC frame (1024 samples at 16 kHz) of padding.
LENGTH_SLACK_S = 1 / FPS + 0.1 + 1024 / 16_000
CLIENT_TIMEOUT_S = 600.0  # a hang guard, not a measurement


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, embedded_model_cache: Path) -> Iterator[ProcessStack]:
    with ProcessStack(tmp_path_factory.mktemp("load"), embedded_model_cache, GATEWAY_ENV) as stack:
        yield stack


def body(index: int) -> dict[str, Any]:
    if index in SPOKEN:
        return {"audio": base64.b64encode(speak_wav(QUESTIONS[index])).decode(), **ANSWER}
    return {"text": QUESTIONS[index], **ANSWER}


def counters(stack: ProcessStack) -> dict[str, float]:
    """Each service's count of successful answers on its pipeline endpoint."""
    paths = {"asr": "/v1/asr", "llm": "/v1/chat/completions", "tts": "/v1/tts", "animation": "/v1/animation"}
    counts = {}
    for service, path in paths.items():
        metrics = httpx.get(f"{stack[service].url}/metrics", trust_env=False).text
        labels = {"service": service, "method": "POST", "path": path, "status": "200"}
        counts[service] = sample(metrics, "avatarchat_requests_total", **labels)
    return counts


async def ask(http: httpx.AsyncClient, index: int, log: list[dict[str, Any]]) -> dict[str, Any]:
    """Ask question `index` until it is answered; a 503 must carry Retry-After, honoured before asking again."""
    attempt = 0
    while True:
        attempt += 1
        request_id = f"load-{index:02d}-{attempt}"
        response = await http.post("/v1/avatarchatbot", json=body(index), headers={"X-Request-ID": request_id})
        log.append({"question": index, "request_id": request_id, "status": response.status_code})
        assert response.headers.get("x-request-id") == request_id, response.headers
        if response.status_code == 200:
            return {"index": index, "request_id": request_id, **response.json()}
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("unavailable", "queue_full"), error
        retry_after = float(response.headers["retry-after"])
        assert retry_after > 0
        await asyncio.sleep(retry_after)


async def ask_all(stack: ProcessStack, log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Pooled, kept-alive connections, as a real client keeps them: a retry after Retry-After reuses one
    # (the services keep idle connections open far longer than any Retry-After: cli.main.KEEP_ALIVE_S).
    limits = httpx.Limits(max_connections=len(QUESTIONS))
    timeout = httpx.Timeout(CLIENT_TIMEOUT_S)
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=timeout, limits=limits, trust_env=False) as http:
        return list(await asyncio.gather(*(ask(http, index, log) for index in range(len(QUESTIONS)))))


def speech(wav_or_mp4: bytes) -> np.ndarray:
    return decode_audio(wav_or_mp4, sample_rate=16_000)


def synthesized(http: httpx.Client, tts_url: str, text: str) -> np.ndarray:
    """`text` spoken again by the TTS service itself."""
    response = http.post(f"{tts_url}/v1/tts", json={"text": text}).raise_for_status()
    return speech(base64.b64decode(response.json()["tts_result"]))


def distances(tracks: list[np.ndarray], spoken: list[np.ndarray], texts: list[str]) -> tuple[list[float], list[float]]:
    """Speech distance of each track to its own answer spoken again, and to every answer with other words."""
    track_mels, said_mels = [mel_frames(t) for t in tracks], [mel_frames(s) for s in spoken]
    own = [speech_distance(track_mels[i], said_mels[i]) for i in range(len(tracks))]
    cross = [
        speech_distance(track_mels[i], said_mels[j])
        for i in range(len(tracks))
        for j in range(len(tracks))
        if texts[i] != texts[j]
    ]
    return own, cross


def test_32_questions_at_once_each_answered_once_with_its_own_speech_in_bounded_memory(stack: ProcessStack) -> None:
    warm = httpx.post(f"{stack.gateway.url}/v1/avatarchatbot", json=body(0), timeout=CLIENT_TIMEOUT_S)
    assert warm.status_code == 200, warm.text  # the avatar is analysed on the first render
    peak_before = {name: stack[name].peak_rss_bytes() for name in (*SERVICES, "gateway")}
    counts_before = counters(stack)
    videos_before = set(stack.videos.glob("*.mp4"))

    log: list[dict[str, Any]] = []
    answers = asyncio.run(ask_all(stack, log))

    # None lost, none answered twice: one 200 per question, and each service did each answer's work once.
    statuses = Counter(entry["status"] for entry in log)
    assert statuses[200] == len(QUESTIONS) and set(statuses) <= {200, 503}, statuses
    assert statuses[503] >= len(QUESTIONS) - 8  # 2 running + 6 waiting: the rest of the first wave is refused
    assert sorted(answer["index"] for answer in answers) == list(range(len(QUESTIONS)))
    assert len({answer["id"] for answer in answers}) == len(QUESTIONS)
    done = {name: count - counts_before[name] for name, count in counters(stack).items()}
    assert done == {"asr": len(SPOKEN), "llm": len(QUESTIONS), "tts": len(QUESTIONS), "animation": len(QUESTIONS)}
    new_videos = {path.stem for path in set(stack.videos.glob("*.mp4")) - videos_before}
    assert new_videos == {answer["id"] for answer in answers}

    # Each video's audio track is its own answer spoken, and not any other answer.
    with httpx.Client(timeout=CLIENT_TIMEOUT_S, trust_env=False) as http:
        tracks = [speech(http.get(answer["video_url"]).raise_for_status().content) for answer in answers]
        spoken = [synthesized(http, stack["tts"].url, answer["answer"]) for answer in answers]
    for answer, track, said in zip(answers, tracks, spoken, strict=True):
        assert abs(track.size - said.size) / 16_000 <= LENGTH_SLACK_S, (answer["answer"], track.size, said.size)
    texts = [answer["answer"].strip() for answer in answers]
    own, cross = distances(tracks, spoken, texts)
    distinct = len(set(texts))
    assert distinct >= len(QUESTIONS) - 2, texts  # else too few pairs would tell one answer from another
    assert max(own) <= SAME_SPEECH_MAX < min(cross), (max(own), min(cross))

    peak_after = {name: stack[name].peak_rss_bytes() for name in (*SERVICES, "gateway")}
    figures = {
        "questions": len(QUESTIONS), "spoken_questions": len(SPOKEN), "concurrent": len(QUESTIONS),
        "gateway": {"max_concurrency": 2, "max_queue": 6}, "answers": len(answers), "refused_503": statuses[503],
        "requests_sent": len(log), "distinct_answers": distinct, "lost": 0, "answered_twice": 0,
        "speech_distance_own_max": round(max(own), 4), "speech_distance_other_min": round(min(cross), 4),
        "cross_pairs_compared": len(cross), "peak_rss_mib_after_warm_up": _mib(peak_before),
        "peak_rss_mib_after_load": _mib(peak_after), "rss_ceiling_mib": RSS_CEILING // 2**20,
        "max_tokens": ANSWER["max_tokens"], "fps": FPS,
    }  # fmt: skip
    summary = (
        f"{len(QUESTIONS)} concurrent questions, {len(answers)} answered once each, {statuses[503]} refusals "
        f"(503 + Retry-After) retried, 0 lost; own speech distance <= {max(own):.3f} < others >= {min(cross):.3f}; "
        f"peak RSS MiB {_mib(peak_after)}"
    )
    record("load", figures, summary)
    for name, peak in peak_after.items():
        assert peak <= RSS_CEILING, (name, peak)


def _mib(sizes: dict[str, int]) -> dict[str, int]:
    return {name: size // 2**20 for name, size in sizes.items()}
