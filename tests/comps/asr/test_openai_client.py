"""The official `openai` client, unchanged, against the app (in-process through ASGITransport)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from support.models import word_error_rate

from comps.asr.app import create_app
from comps.asr.backends.base import Audio
from comps.asr.settings import AsrSettings
from comps.core.audio import encode_wav

pytestmark = pytest.mark.anyio


async def test_openai_client_json_and_text(
    make_settings: Callable[..., AsrSettings], faster_backend: Any, spoken: dict[str, Audio]
) -> None:
    app = create_app(make_settings(), backend=faster_backend)
    text, audio = list(spoken.items())[2]
    wav = encode_wav(audio, 16_000)
    async with app.router.lifespan_context(app):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=120)
        async with openai.AsyncOpenAI(base_url="http://t/v1", api_key="x", http_client=http) as client:
            as_json = await client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", wav))
            as_text = await client.audio.transcriptions.create(
                model="whisper-1", file=("speech.wav", wav), response_format="text", language="en"
            )
            verbose = await client.audio.transcriptions.create(
                model="tiny.en", file=("speech.wav", wav), response_format="verbose_json"
            )
            with pytest.raises(openai.BadRequestError) as refused:
                await client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("speech.wav", wav))
    assert word_error_rate(text, as_json.text) <= 0.25
    assert isinstance(as_text, str)
    assert as_text.strip() == as_json.text
    assert verbose.language == "english" and verbose.segments and verbose.text == as_json.text
    assert refused.value.status_code == 400
    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "model"
