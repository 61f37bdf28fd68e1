"""The sampling bounds, and that every request model carrying sampling fields has exactly these."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from comps.core.sampling import MAX_STOP_SEQUENCES, MAX_TOKENS_LIMIT, SamplingParameters
from comps.llm.schemas import ChatCompletionRequest
from gateway.schemas import GATEWAY_MAX_TOKENS_LIMIT, AvatarChatRequest
from megaservice.chat import ChatRequest

OUT_OF_RANGE: list[tuple[str, Any]] = [
    ("max_tokens", 0), ("max_tokens", MAX_TOKENS_LIMIT + 1), ("max_tokens", "many"),
    ("temperature", -0.1), ("temperature", 2.01),
    ("top_p", 0), ("top_p", 1.01),
    ("top_k", 0),
    ("frequency_penalty", -2.01), ("frequency_penalty", 2.01),
    ("presence_penalty", -2.01), ("presence_penalty", 2.01),
    ("repetition_penalty", 0), ("repetition_penalty", -1), ("repetition_penalty", 10.01),
    ("stop", [""]), ("stop", ""), ("stop", ["s"] * (MAX_STOP_SEQUENCES + 1)),
    ("seed", -1), ("seed", 2**63),
]  # fmt: skip

AT_THE_EDGE: list[tuple[str, Any]] = [
    ("max_tokens", 1), ("max_tokens", MAX_TOKENS_LIMIT),
    ("temperature", 0), ("temperature", 2),
    ("top_p", 1), ("top_p", 1e-9),
    ("top_k", 1),
    ("frequency_penalty", -2), ("presence_penalty", 2),
    ("repetition_penalty", 10), ("repetition_penalty", 1e-9),
    ("stop", "x"), ("stop", ["s"] * MAX_STOP_SEQUENCES),
    ("seed", 0), ("seed", 2**63 - 1),
]  # fmt: skip

# Each model that carries the sampling fields, with the least else it needs to be valid.
CARRIERS: dict[type[BaseModel], dict[str, Any]] = {
    SamplingParameters: {},
    ChatCompletionRequest: {"messages": [{"role": "user", "content": "hi"}]},
    ChatRequest: {"messages": [{"role": "user", "content": "hi"}]},
    AvatarChatRequest: {"text": "hi"},
}


@pytest.mark.parametrize("model", list(CARRIERS), ids=lambda model: model.__name__)
@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
def test_out_of_range_is_refused_naming_the_field_everywhere(model: type[BaseModel], name: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({**CARRIERS[model], name: value})
    assert caught.value.errors()[0]["loc"][0] == name


# The gateway caps max_tokens lower (the test after this one): its upper edge is its own.
EDGE_CASES = [
    (model, name, value)
    for model in CARRIERS
    for name, value in AT_THE_EDGE
    if not (model is AvatarChatRequest and name == "max_tokens" and value > GATEWAY_MAX_TOKENS_LIMIT)
]


@pytest.mark.parametrize(("model", "name", "value"), EDGE_CASES)
def test_the_edges_are_accepted_everywhere(model: type[BaseModel], name: str, value: Any) -> None:
    assert getattr(model.model_validate({**CARRIERS[model], name: value}), name) == value


def test_the_gateway_caps_max_tokens_lower_and_keeps_opea_defaults() -> None:
    assert AvatarChatRequest(text="hi", max_tokens=GATEWAY_MAX_TOKENS_LIMIT).max_tokens == GATEWAY_MAX_TOKENS_LIMIT
    with pytest.raises(ValidationError, match="max_tokens"):
        AvatarChatRequest(text="hi", max_tokens=GATEWAY_MAX_TOKENS_LIMIT + 1)
    defaults = AvatarChatRequest(text="hi").sampling()
    assert defaults == SamplingParameters(
        temperature=0.01, top_p=0.95, top_k=10, presence_penalty=0.0, frequency_penalty=0.0, repetition_penalty=1.03
    )


def test_every_carrier_has_every_sampling_field() -> None:
    for model in CARRIERS:
        assert set(SamplingParameters.model_fields) <= set(model.model_fields), model.__name__


def test_unset_is_none_and_zero_stays_zero() -> None:
    assert SamplingParameters().model_dump(exclude_none=True) == {}
    assert SamplingParameters(temperature=0, presence_penalty=0).model_dump(exclude_none=True) == {
        "temperature": 0.0,
        "presence_penalty": 0.0,
    }


def test_stop_sequences_is_always_a_list() -> None:
    assert SamplingParameters().stop_sequences == []
    assert SamplingParameters(stop="x").stop_sequences == ["x"]
    assert SamplingParameters(stop=["x", "y"]).stop_sequences == ["x", "y"]


def test_sampling_leaves_the_other_fields_behind() -> None:
    request = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "hi"}], "top_k": 3, "stop": "x", "stream": True}
    )
    sampling = request.sampling()
    assert type(sampling) is SamplingParameters
    assert sampling == SamplingParameters(top_k=3, stop="x")
