"""Schemathesis over the TTS service's OpenAPI with the real Piper voice: no 5xx, conforming answers."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from schemathesis import Case
from support.fuzz import fuzz, schema_of, send_valid, settings

from comps.tts.app import create_app
from comps.tts.backends.piper import PiperBackend
from comps.tts.settings import TtsSettings

schema = schema_of(create_app(TtsSettings()))


@pytest.fixture
def app(piper_backend: PiperBackend) -> FastAPI:
    return create_app(TtsSettings(), backend=piper_backend)


@schema.parametrize()
@settings(max_examples=20)
def test_fuzz(case: Case, app: FastAPI) -> None:
    fuzz(case, app)


@pytest.mark.parametrize("response_format", ["wav", "mp3", "flac", "opus", "pcm"])
def test_answers_conform(app: FastAPI, response_format: str) -> None:
    send_valid(schema, app, "POST", "/v1/tts", body={"text": "Hello there."})
    body = {"input": "Hello there.", "response_format": response_format}
    send_valid(schema, app, "POST", "/v1/audio/speech", body=body)
    send_valid(schema, app, "POST", "/v1/audio/speech", body=body | {"stream_format": "sse"})
    send_valid(schema, app, "GET", "/v1/voices")
