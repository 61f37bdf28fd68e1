"""Schemathesis over the LLM service's OpenAPI with the tiny model: no 5xx, conforming answers, 4xx for bad input."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from schemathesis import Case
from support.fuzz import fuzz, schema_of, send_valid, settings

from comps.llm.app import create_app
from comps.llm.backends.transformers import TransformersBackend
from comps.llm.settings import LlmSettings

schema = schema_of(create_app(LlmSettings(model_id="tiny")))


@pytest.fixture
def app(llm_settings: LlmSettings, make_backend: Callable[..., TransformersBackend]) -> FastAPI:
    # A short default answer: the fuzzer sends many requests without max_tokens.
    return create_app(llm_settings.model_copy(update={"default_max_tokens": 4}), make_backend())


@schema.parametrize()
@settings(max_examples=30)
def test_fuzz(case: Case, app: FastAPI) -> None:
    fuzz(case, app)


@pytest.mark.parametrize("stream", [False, True])
def test_answers_conform(app: FastAPI, stream: bool) -> None:
    body = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 3, "stream": stream}
    send_valid(schema, app, "POST", "/v1/chat/completions", body=body)
    send_valid(schema, app, "GET", "/v1/models")
