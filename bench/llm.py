"""LLM service: time to first token and tokens/s, streaming vs non-streaming, over real HTTP, side by side.

Serves the configured model (LLM_* environment; by default the tiny test model, built into a temp dir)
with uvicorn on a local port and measures, for the same greedy request:
  * direct   - the backend's blocking generate, no HTTP (the floor);
  * complete - POST /v1/chat/completions, JSON answer;
  * stream   - the same with stream=true: time to the first text chunk, then to [DONE].

Run: .venv/bin/python bench/llm.py [--runs 9] [--max-tokens 64]
Timings on a shared, oversubscribed CPU are noisy; compare the ratios, which are measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from comps.core.settings import load_settings  # noqa: E402
from comps.llm.app import create_app  # noqa: E402
from comps.llm.backends.base import GenerationRequest, Message  # noqa: E402
from comps.llm.settings import LlmSettings  # noqa: E402

QUESTION = [{"role": "user", "content": "Hello! Can you tell me a short story about a small robot?"}]


def settings_for_bench(workdir: Path) -> LlmSettings:
    if "LLM_MODEL_ID" in os.environ or os.environ.get("LLM_BACKEND") == "openai":
        return load_settings(LlmSettings)
    from support.tiny_llm import build_tiny_llm

    folder = build_tiny_llm(workdir / "tiny-llm")
    return load_settings(LlmSettings, model_id=str(folder), served_model_name="tiny-llm", device="cpu")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def complete(client: httpx.Client, body: dict[str, object]) -> tuple[float, int]:
    start = time.perf_counter()
    response = client.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    return time.perf_counter() - start, int(response.json()["usage"]["completion_tokens"])


def stream(client: httpx.Client, body: dict[str, object]) -> tuple[float, float, int]:
    start = time.perf_counter()
    first: float | None = None
    tokens = 0
    stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/chat/completions", json=stream_body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if first is None and any(c["delta"].get("content") for c in chunk["choices"]):
                first = time.perf_counter() - start
            if chunk.get("usage"):
                tokens = int(chunk["usage"]["completion_tokens"])
    total = time.perf_counter() - start
    return first if first is not None else total, total, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    body: dict[str, object] = {"messages": QUESTION, "max_tokens": args.max_tokens, "temperature": 0}

    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for_bench(Path(tmp))
        port = free_port()
        app = create_app(settings.model_copy(update={"log_level": "WARNING"}))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            while True:  # readiness: the model loads in the lifespan
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            complete(client, body)  # warm-up
            direct, plain, streamed = [], [], []
            backend = app.state.backend
            local = getattr(backend, "local_model", None)
            for _ in range(args.runs):
                if local is not None:
                    request = GenerationRequest(
                        messages=(
                            Message("system", settings.system_prompt),
                            Message("user", str(QUESTION[0]["content"])),
                        ),
                        max_tokens=args.max_tokens,
                        temperature=0.0,
                    )
                    # In a worker thread, as the service runs it (torch's main-thread OpenMP pool behaves differently).
                    with ThreadPoolExecutor(1) as pool:
                        start = time.perf_counter()
                        result = pool.submit(local.generate, request, on_text=None, cancel=threading.Event()).result()
                        direct.append((time.perf_counter() - start, result.usage.completion_tokens))
                plain.append(complete(client, body))
                streamed.append(stream(client, body))
        server.should_exit = True
        thread.join()

    med = statistics.median
    print(
        f"model: {settings.model_name} ({settings.backend}, device={settings.device}), {args.runs} runs, "
        f"max_tokens={args.max_tokens}, greedy; medians"
    )
    print(f"{'mode':<10}{'first token ms':>16}{'total ms':>12}{'tokens':>8}{'tokens/s':>10}")
    if direct:
        d_total = med(t for t, _ in direct)
        d_tokens = med(n for _, n in direct)
        print(f"{'direct':<10}{'-':>16}{d_total * 1000:>12.1f}{d_tokens:>8.0f}{d_tokens / d_total:>10.1f}")
    p_total = med(t for t, _ in plain)
    p_tokens = med(n for _, n in plain)
    print(f"{'complete':<10}{'-':>16}{p_total * 1000:>12.1f}{p_tokens:>8.0f}{p_tokens / p_total:>10.1f}")
    s_first = med(f for f, _, _ in streamed)
    s_total = med(t for _, t, _ in streamed)
    s_tokens = med(n for _, _, n in streamed)
    print(f"{'stream':<10}{s_first * 1000:>16.1f}{s_total * 1000:>12.1f}{s_tokens:>8.0f}{s_tokens / s_total:>10.1f}")
    print(f"stream total / complete total: {s_total / p_total:.3f}x")
    print(f"first streamed token / complete total: {s_first / p_total:.3f}x (how much sooner speech can start)")
    if direct:
        print(f"complete over HTTP / direct generate: {p_total / d_total:.3f}x (service overhead)")


if __name__ == "__main__":
    main()
