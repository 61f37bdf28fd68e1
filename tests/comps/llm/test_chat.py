"""Mapping API requests to backend requests and backend answers to OpenAI objects."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from comps.llm.backends.base import Generation, StreamPiece, TokenUsage
from comps.llm.chat import chunk_events, to_completion, to_generation
from comps.llm.schemas import ChatCompletionRequest


def request(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "hi"}], **fields})


def test_persona_is_prepended_without_a_system_message() -> None:
    mapped = to_generation(request(), system_prompt="Be an avatar.")
    assert [(m.role, m.content) for m in mapped.messages] == [("system", "Be an avatar."), ("user", "hi")]
    assert to_generation(request(), system_prompt="").messages[0].role == "user"


def test_an_own_system_or_developer_message_wins() -> None:
    for role in ("system", "developer"):
        body = ChatCompletionRequest.model_validate(
            {"messages": [{"role": role, "content": "Mine."}, {"role": "user", "content": "hi"}]}
        )
        mapped = to_generation(body, system_prompt="Be an avatar.")
        assert [(m.role, m.content) for m in mapped.messages] == [("system", "Mine."), ("user", "hi")]


def test_every_sampling_field_is_carried_and_repetition_penalty_is_its_own() -> None:
    mapped = to_generation(
        request(
            max_tokens=7,
            temperature=0,
            top_p=0.5,
            top_k=3,
            stop=["x", "y"],
            seed=4,
            presence_penalty=1.0,
            frequency_penalty=-1.0,
            repetition_penalty=1.2,
        ),
        system_prompt="",
    )
    assert (mapped.max_tokens, mapped.temperature, mapped.top_p, mapped.top_k) == (7, 0.0, 0.5, 3)
    assert (mapped.stop, mapped.seed) == (("x", "y"), 4)
    assert (mapped.presence_penalty, mapped.frequency_penalty, mapped.repetition_penalty) == (1.0, -1.0, 1.2)
    assert to_generation(request(presence_penalty=1.5), system_prompt="").repetition_penalty is None


def test_completion_carries_usage_and_finish_reason() -> None:
    answer = to_completion(Generation("Hi!", "stop", TokenUsage(3, 2)), model="m")
    assert answer.choices[0].message.content == "Hi!"
    assert answer.usage is not None and answer.usage.total_tokens == 5


@pytest.mark.anyio
async def test_chunks_close_the_backend_stream_when_closed_early() -> None:
    closed = False

    async def rest() -> AsyncIterator[StreamPiece]:
        nonlocal closed
        try:
            yield StreamPiece("b")
            yield StreamPiece("c")
        finally:
            closed = True

    events = chunk_events(StreamPiece("a"), rest(), model="m", include_usage=False)
    received = [await anext(events) for _ in range(3)]  # role, "a", "b"
    await events.aclose()
    assert '"content":"b"' in received[2]
    assert closed


class Backend:
    """A backend stream that records being closed (closing it is what stops the worker)."""

    def __init__(self) -> None:
        self.closed = False

    def __aiter__(self) -> Backend:
        return self

    async def __anext__(self) -> StreamPiece:
        return StreamPiece("more")

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.anyio
async def test_chunks_closed_at_their_first_event_close_the_backend_stream() -> None:
    # The response may be cancelled while only the role event has gone out.
    backend = Backend()
    events = chunk_events(StreamPiece("a"), backend, model="m", include_usage=False)
    assert '"role":"assistant"' in await anext(events)
    await events.aclose()
    assert backend.closed
