"""The backend request and its one mapping to and from the shared sampling fields."""

from __future__ import annotations

import dataclasses

from comps.core.sampling import SamplingParameters
from comps.llm.backends.base import GenerationRequest, Message

HI = (Message(role="user", content="hi"),)


def test_the_backend_request_has_exactly_the_shared_sampling_fields() -> None:
    names = {field.name for field in dataclasses.fields(GenerationRequest)}
    assert names == {"messages", *SamplingParameters.model_fields}


def test_of_carries_every_field_and_stop_becomes_a_tuple() -> None:
    sampling = SamplingParameters(
        max_tokens=7, temperature=0, top_p=0.5, top_k=3, frequency_penalty=-1, presence_penalty=1,
        repetition_penalty=1.2, stop="x", seed=4,
    )  # fmt: skip
    request = GenerationRequest.of(list(HI), sampling)
    assert request == GenerationRequest(
        messages=HI, max_tokens=7, temperature=0.0, top_p=0.5, top_k=3, stop=("x",), seed=4,
        presence_penalty=1.0, frequency_penalty=-1.0, repetition_penalty=1.2,
    )  # fmt: skip
    assert GenerationRequest.of(HI, SamplingParameters()) == GenerationRequest(messages=HI)


def test_sampling_fields_are_the_set_ones_under_openai_names() -> None:
    sampling = SamplingParameters(temperature=0, stop=["a", "b"], seed=0, repetition_penalty=1.1)
    fields = GenerationRequest.of(HI, sampling).sampling_fields()
    assert fields == {"temperature": 0.0, "stop": ["a", "b"], "seed": 0, "repetition_penalty": 1.1}
    assert SamplingParameters.model_validate(fields) == sampling
    assert GenerationRequest(messages=HI).sampling_fields() == {}
