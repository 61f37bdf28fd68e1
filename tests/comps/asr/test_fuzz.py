"""Schemathesis over the ASR service's OpenAPI with real faster-whisper tiny.en: no 5xx, conforming answers."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from schemathesis import Case
from support.fuzz import fuzz, schema_of, send_valid, settings

from comps.asr.app import create_app
from comps.asr.backends.base import Audio
from comps.asr.settings import AsrSettings
from comps.core.audio import encode_wav

schema = schema_of(create_app(AsrSettings()))


@pytest.fixture
def app(make_settings: Callable[..., AsrSettings], faster_backend: Any) -> FastAPI:
    return create_app(make_settings(), backend=faster_backend)


@schema.parametrize()
@settings(max_examples=25)
def test_fuzz(case: Case, app: FastAPI) -> None:
    fuzz(case, app)


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "vtt", "verbose_json"])
def test_answers_conform(app: FastAPI, spoken: dict[str, Audio], response_format: str) -> None:
    wav = encode_wav(next(iter(spoken.values())), 16_000)
    send_valid(schema, app, "POST", "/v1/asr", body={"audio": base64.b64encode(wav).decode()})
    form = {"file": wav, "model": "whisper-1", "response_format": response_format}
    send_valid(schema, app, "POST", "/v1/audio/transcriptions", body=form, media_type="multipart/form-data")
