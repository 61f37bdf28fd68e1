"""Our orchestrator vs opea-comps' ServiceOrchestrator on the same four trivial services, side by side.

(a) median wall time of one request through asr -> llm -> tts -> animation answering canned JSON at once;
(b) 32 concurrent requests through services that each sleep 100 ms: wall time / one request's wall time.

opea-comps installs a top-level package named `comps`, like ours, so its side runs in its own venv
(`.venv-opea/`, created here on first use with `pip install opea-comps`) and reaches the services over HTTP.

Run: .venv/bin/python bench/orchestrator.py [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
OPEA_VENV = REPO / ".venv-opea"
CONCURRENT = 32
AUDIO = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="  # a 44-byte empty WAV

SERVICES = r"""
import asyncio, sys
import uvicorn
from fastapi import FastAPI
delay = float(sys.argv[2])
app = FastAPI()

@app.get("/health")
async def health(): return {"status": "ok"}

@app.post("/v1/asr")
async def asr(body: dict):
    await asyncio.sleep(delay); return {"asr_result": "What is the capital of France?"}

@app.post("/v1/chat/completions")
async def llm(body: dict):
    await asyncio.sleep(delay)
    return {"id": "c", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}}]}

@app.post("/v1/tts")
async def tts(body: dict):
    await asyncio.sleep(delay); return {"tts_result": "UklGRiQAAABXQVZF"}

@app.post("/v1/animation")
async def animation(body: dict):
    await asyncio.sleep(delay); return {"id": "v1", "video_path": "/outputs/v1.mp4"}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

# Theirs: OPEA's AvatarChatbot megaservice shape (align_inputs override), timed the same way as ours.
OPEA_SIDE = r"""
import asyncio, json, statistics, sys, time
from comps import MicroService, ServiceOrchestrator, ServiceType
from comps.cores.proto.docarray import LLMParams
cfg = json.loads(sys.argv[1])

def build(port):
    mega = ServiceOrchestrator()
    def align_inputs(inputs, cur_node, runtime_graph, llm_parameters_dict, **kwargs):
        kind = mega.services[cur_node].service_type
        if kind == ServiceType.LLM:
            return {"messages": [{"role": "user", "content": inputs["asr_result"]}],
                    "max_tokens": llm_parameters_dict["max_tokens"], "temperature": 0.0, "stream": False}
        if kind == ServiceType.TTS:
            return {"text": inputs["choices"][0]["message"]["content"]}
        if kind == ServiceType.ANIMATION:
            return {"byte_str": inputs["tts_result"]}
        return inputs
    mega.align_inputs = align_inputs
    stages = [("asr", "/v1/asr", ServiceType.ASR), ("llm", "/v1/chat/completions", ServiceType.LLM),
              ("tts", "/v1/tts", ServiceType.TTS), ("animation", "/v1/animation", ServiceType.ANIMATION)]
    nodes = [MicroService(name=n, host="127.0.0.1", port=port, endpoint=e, use_remote_service=True, service_type=t)
             for n, e, t in stages]
    for n in nodes: mega.add(n)
    for a, b in zip(nodes, nodes[1:]): mega.flow_to(a, b)
    return mega

params = LLMParams(max_tokens=128, temperature=0.0, stream=False)

async def once(mega):
    start = time.perf_counter()
    results, graph = await mega.schedule({"audio": cfg["audio"]}, llm_parameters=params)
    assert results[graph.all_leaves()[-1]]["video_path"].endswith(".mp4"), results  # keys are "name/MicroService"
    return time.perf_counter() - start

async def main():
    fast, slow = build(cfg["fast"]), build(cfg["slow"])
    for _ in range(20): await once(fast)
    cpu = time.process_time()
    samples = [await once(fast) for _ in range(cfg["requests"])]
    cpu = (time.process_time() - cpu) / cfg["requests"]
    single = statistics.median([await once(slow) for _ in range(5)])
    walls = []
    for _ in range(3):
        start = time.perf_counter(); await asyncio.gather(*(once(slow) for _ in range(cfg["concurrent"])))
        walls.append(time.perf_counter() - start)
    print(json.dumps({"median": statistics.median(samples), "cpu": cpu, "single": single,
                      "concurrent": statistics.median(walls)}))

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_opea_venv() -> Path:
    python = OPEA_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {OPEA_VENV} with opea-comps (first run only, a few minutes)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(OPEA_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "opea-comps"], check=True)
    return python


def start_services(delay: float) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVICES, str(port), str(delay)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process, port
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the trivial services did not start")


async def ours(fast: int, slow: int, requests: int) -> dict[str, float]:
    sys.path.insert(0, str(REPO))
    from comps.core.sampling import SamplingParameters
    from megaservice.avatarchatbot import DEFAULT_MAX_TOKENS, STAGES, AvatarChatbot, AvatarParameters, stage_node

    def build(port: int) -> AvatarChatbot:
        nodes = {s: stage_node(s, ("127.0.0.1", port), timeout_s=30, retries=0) for s in STAGES}
        return AvatarChatbot(nodes)

    params = AvatarParameters(sampling=SamplingParameters(max_tokens=DEFAULT_MAX_TOKENS, temperature=0.0))

    async def once(chatbot: AvatarChatbot) -> float:
        start = time.perf_counter()
        answer = await chatbot.answer(audio=AUDIO, text=None, params=params)
        assert answer.video.video_path.endswith(".mp4")
        return time.perf_counter() - start

    fast_bot, slow_bot = build(fast), build(slow)
    for _ in range(20):
        await once(fast_bot)
    cpu = time.process_time()
    samples = [await once(fast_bot) for _ in range(requests)]
    cpu = (time.process_time() - cpu) / requests
    single = statistics.median([await once(slow_bot) for _ in range(5)])
    walls = []
    for _ in range(3):
        start = time.perf_counter()
        await asyncio.gather(*(once(slow_bot) for _ in range(CONCURRENT)))
        walls.append(time.perf_counter() - start)
    await fast_bot.aclose()
    await slow_bot.aclose()
    return {"median": statistics.median(samples), "cpu": cpu, "single": single, "concurrent": statistics.median(walls)}


def theirs(python: Path, fast: int, slow: int, requests: int) -> dict[str, float]:
    config = {"fast": fast, "slow": slow, "requests": requests, "concurrent": CONCURRENT, "audio": AUDIO}
    with tempfile.TemporaryDirectory() as elsewhere:  # away from our `comps` package
        done = subprocess.run(
            [str(python), "-P", "-c", OPEA_SIDE, json.dumps(config)],
            cwd=elsewhere, capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"opea-comps side failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="sequential requests for the median")
    args = parser.parse_args()
    python = ensure_opea_venv()
    fast_process, fast = start_services(0.0)
    slow_process, slow = start_services(0.1)
    try:
        # Two rounds each, alternating, so a noisy neighbour on the machine hits both sides alike.
        runs: dict[str, list[dict[str, float]]] = {"ours": [], "opea-comps": []}
        for _ in range(2):
            runs["ours"].append(asyncio.run(ours(fast, slow, args.requests)))
            runs["opea-comps"].append(theirs(python, fast, slow, args.requests))
    finally:
        for process in (fast_process, slow_process):
            process.terminate()
            process.wait()
    summary: dict[str, dict[str, Any]] = {}
    for side, results in runs.items():
        summary[side] = {key: min(r[key] for r in results) for key in ("median", "cpu", "single", "concurrent")}
        summary[side]["scaling"] = summary[side]["concurrent"] / summary[side]["single"]
    print(
        f"{'':12} {'median/request':>15} {'client CPU/req':>15} {'1 req @100ms':>13} "
        f"{f'{CONCURRENT} concurrent':>14} {'wall ratio':>11}"
    )
    for side, s in summary.items():
        print(
            f"{side:12} {s['median'] * 1000:>12.2f} ms {s['cpu'] * 1000:>12.2f} ms {s['single'] * 1000:>10.1f} ms "
            f"{s['concurrent'] * 1000:>11.1f} ms {s['scaling']:>11.3f}"
        )
    ratio = summary["ours"]["median"] / summary["opea-comps"]["median"]
    cpu_ratio = summary["ours"]["cpu"] / summary["opea-comps"]["cpu"]
    print(f"(a) median time per request, ours / opea-comps: {ratio:.3f}  (goal <= 0.7)")
    print(f"    client CPU per request (the orchestrator's own cost), ours / opea-comps: {cpu_ratio:.3f}")
    print(f"(b) {CONCURRENT} concurrent / one request, ours: {summary['ours']['scaling']:.3f}  (goal <= 1.1); "
          f"opea-comps: {summary['opea-comps']['scaling']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
