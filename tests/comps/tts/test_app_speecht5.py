"""The service built from settings alone loads SpeechT5 (a tiny random one here) and serves it like Piper."""

from __future__ import annotations

import base64
import io
import wave

import httpx
import pytest

from comps.tts.app import create_app
from comps.tts.backends.speecht5 import MAX_LENGTH_RATIO
from comps.tts.settings import TtsSettings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("one_torch_thread")]


async def test_speecht5_from_settings_serves_both_endpoints(tiny_speecht5, tmp_path) -> None:
    settings = TtsSettings(
        backend="speecht5",
        model=str(tiny_speecht5.model_dir),
        vocoder=str(tiny_speecht5.vocoder_dir),
        voices_dir=tiny_speecht5.voices_dir,
        model_cache_dir=tmp_path,
        offline=True,
        device="cpu",
        chunk_pause_ms=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            voices = (await client.get("/v1/voices")).json()
            tts = await client.post("/v1/tts", json={"text": "Who are you?", "voice": "male"})
            speech = await client.post(
                "/v1/audio/speech",
                json={"input": "Who are you?", "voice": "narrator", "response_format": "wav", "speed": 2.0},
            )
            unknown = await client.post("/v1/tts", json={"text": "Hi", "voice": "female"})
        tokens = len(app.state.speech.backend._tokenizer("Who are you?")["input_ids"])
    assert voices["voices"] == ["default", "male", "narrator"] and voices["sample_rate"] == 16_000
    assert tts.status_code == 200, tts.text
    with wave.open(io.BytesIO(base64.b64decode(tts.json()["tts_result"]))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        # The random model never predicts "stop", so it speaks to its bound: 20 frames per token.
        frames = int(tokens * MAX_LENGTH_RATIO / tiny_speecht5.reduction_factor) * tiny_speecht5.reduction_factor
        assert wav.getnframes() == frames * tiny_speecht5.hop
    assert speech.status_code == 200, speech.text
    with wave.open(io.BytesIO(speech.content)) as wav:
        # Twice the speed: half the mel frames, resampled from 16 to 24 kHz.
        assert abs(wav.getnframes() - frames // 2 * tiny_speecht5.hop * 24_000 / 16_000) <= 2
    assert unknown.status_code == 400
    assert "available voices: default, male, narrator" in unknown.json()["error"]["message"]
