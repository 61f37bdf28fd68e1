"""The transformers backend: loading from settings, streaming pieces, and closing a stream stops the thread."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from comps.llm.backends.base import GenerationRequest, Message
from comps.llm.backends.transformers import TransformersBackend, load_backend
from comps.llm.settings import LlmSettings

HELLO = (Message(role="user", content="Hello, how are you?"),)


def test_load_backend_from_settings(llm_settings: LlmSettings) -> None:
    backend = load_backend(llm_settings.model_copy(update={"served_model_name": "ava", "max_model_len": 300}))
    assert backend.model_name == "ava"
    assert backend.max_model_len == 300


@pytest.mark.anyio
async def test_stream_pieces_join_to_the_complete_answer(make_backend: Callable[..., TransformersBackend]) -> None:
    backend = make_backend()
    request = GenerationRequest(messages=HELLO, max_tokens=10, temperature=0.0)
    whole = await backend.complete(request)
    pieces = [piece async for piece in backend.stream(request)]
    assert "".join(p.text for p in pieces) == whole.text
    assert [p.finish_reason for p in pieces if p.finish_reason] == ["length"]
    assert pieces[-1].usage == whole.usage
    assert backend.stats.started == 2 and backend.stats.cancelled == 0


@pytest.mark.anyio
async def test_closing_the_stream_stops_the_worker(make_backend: Callable[..., TransformersBackend]) -> None:
    backend = make_backend(concurrency=1, max_waiting=0)
    stream = backend.stream(GenerationRequest(messages=HELLO, max_tokens=400, temperature=0.0))
    first = await anext(stream)
    assert first.text and first.finish_reason is None
    await stream.aclose()  # returns once the worker thread has stopped
    assert backend.stats.cancelled == 1
    assert backend.stats.completion_tokens < 400
    # The slot is free again.
    again = await backend.complete(GenerationRequest(messages=HELLO, max_tokens=2, temperature=0.0))
    assert again.usage is not None and again.usage.completion_tokens == 2
