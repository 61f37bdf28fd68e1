"""The OpenAI chat schemas: content parts, stop sequences, limits, chunk serialization."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from comps.llm.schemas import ChatCompletionChunk, ChatCompletionRequest, ChatMessage, ChunkChoice, Delta, dump


def test_text_parts_become_one_string() -> None:
    message = ChatMessage.model_validate(
        {"role": "user", "content": [{"type": "text", "text": "a "}, {"type": "text", "text": "b"}]}
    )
    assert message.content == "a b"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ([{"type": "image_url", "image_url": {"url": "x"}}], "only 'text' parts"),
        (["plain"], "must be an object"),
        ([{"type": "text", "text": 3}], "string 'text'"),
        (7, "valid string"),
    ],
)
def test_other_content_is_refused_clearly(content: object, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        ChatMessage.model_validate({"role": "user", "content": content})


def test_stop_is_a_list_and_max_completion_tokens_wins() -> None:
    messages = [{"role": "user", "content": "hi"}]
    single = ChatCompletionRequest.model_validate({"messages": messages, "stop": "x", "max_tokens": 5})
    assert single.stop_sequences == ["x"] and single.requested_max_tokens == 5
    both = ChatCompletionRequest.model_validate(
        {"messages": messages, "max_tokens": 5, "max_completion_tokens": 9, "unknown_field": 1}
    )
    assert both.requested_max_tokens == 9 and both.stop_sequences == []
    with pytest.raises(ValidationError, match="at most 16"):
        ChatCompletionRequest.model_validate({"messages": messages, "stop": ["s"] * 17})


def test_temperature_zero_stays_zero() -> None:
    request = ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "hi"}], "temperature": 0})
    assert request.temperature == 0.0


def test_chunk_delta_leaves_out_unset_fields() -> None:
    chunk = ChatCompletionChunk(id="c", model="m", choices=[ChunkChoice(delta=Delta(content="x"))])
    assert dump(chunk)["choices"][0]["delta"] == {"content": "x"}
    assert dump(chunk)["choices"][0]["finish_reason"] is None
