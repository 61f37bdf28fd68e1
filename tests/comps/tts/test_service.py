"""The shared synthesis path: voice names, chunking limits, pauses between chunks, streaming."""

from __future__ import annotations

import numpy as np
import pytest

from comps.core.errors import InvalidRequest
from comps.core.settings import SettingsError
from comps.tts.backends import load_speecht5
from comps.tts.service import SpeechService
from comps.tts.settings import TtsSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def settings(tiny_speecht5, tmp_path_factory) -> TtsSettings:
    return TtsSettings(
        backend="speecht5",
        model=str(tiny_speecht5.model_dir),
        vocoder=str(tiny_speecht5.vocoder_dir),
        voices_dir=tiny_speecht5.voices_dir,
        model_cache_dir=tmp_path_factory.mktemp("cache"),
        offline=True,
        device="cpu",
        chunk_pause_ms=250,
    )


@pytest.fixture(scope="module")
def service(settings: TtsSettings) -> SpeechService:
    return SpeechService(backend=load_speecht5(settings), settings=settings)


@pytest.mark.anyio
async def test_chunks_are_joined_with_the_configured_pause(service: SpeechService) -> None:
    chunks = ["First part.", "Second part here."]
    alone = [service.backend.synthesize([c], voice="default", speed=1.0)[0].size for c in chunks]
    speech = await service.synthesize(chunks, voice="default", speed=1.0)
    pause = round(0.250 * 16_000)
    # The batch pads to the longer chunk, and this random model always speaks to its bound.
    assert speech.samples.size == 2 * max(alone) + pause
    assert speech.sample_rate == 16_000
    gap = speech.samples[max(alone) : max(alone) + pause]
    assert not gap.any()


@pytest.mark.anyio
async def test_streaming_yields_each_chunk_with_a_leading_pause_after_the_first(service: SpeechService) -> None:
    chunks = ["First part.", "Second part here."]
    parts = [p.samples async for p in service.stream(chunks, voice="male", speed=2.0)]
    alone = [service.backend.synthesize([c], voice="male", speed=2.0)[0].size for c in chunks]
    pause = round(0.250 / 2.0 * 16_000)  # the pause shrinks with speed too
    assert [p.size for p in parts] == [alone[0], pause + alone[1]]
    assert not parts[1][:pause].any() and np.abs(parts[1][pause:]).max() > 0


def test_voice_names(service: SpeechService) -> None:
    assert service.resolve_voice(None) == "default"
    assert service.resolve_voice("") == "default"
    assert service.resolve_voice("male") == "male"
    assert service.resolve_voice("Alloy") == "default"  # OpenAI names select the default voice
    with pytest.raises(InvalidRequest, match="available voices: default, male, narrator") as caught:
        service.resolve_voice("female")
    assert caught.value.param == "voice"


def test_text_limits_and_chunk_sizes(service: SpeechService) -> None:
    text = "A sentence that is long enough to need more than one chunk, surely. Short one."
    chunks = service.chunks(text, param="input")
    assert all(len(c) <= service.chunk_chars for c in chunks) and " ".join(chunks) == text
    assert service.chunk_chars == 60  # the tiny model's limit, TTS_CHUNK_CHARS unset
    with pytest.raises(InvalidRequest, match="over the maximum of 4096"):
        service.chunks("a" * 4097, param="input")


def test_an_unknown_configured_voice_fails_at_start(service: SpeechService, settings: TtsSettings) -> None:
    with pytest.raises(SettingsError, match="TTS_VOICE='female' is not a voice"):
        SpeechService(backend=service.backend, settings=settings.model_copy(update={"voice": "female"}))
