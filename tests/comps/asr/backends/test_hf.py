"""The transformers backend with a tiny random WhisperForConditionalGeneration and the real Whisper tokenizer."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from support.models import whisper_tiny_dir
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizer,
)

from comps.asr.app import create_app
from comps.asr.backends.base import Audio
from comps.asr.backends.hf import TransformersWhisperBackend, locate_model, repo_for
from comps.asr.settings import AsrSettings
from comps.core.audio import encode_wav
from comps.core.weights import WeightsMissingError

# Token ids of the English-only Whisper vocabulary (as in openai/whisper-tiny.en's generation_config.json).
EOT, SOT, PREV, NO_TIMESTAMPS = 50256, 50257, 50360, 50362


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random English-only Whisper saved with save_pretrained, beside the real tiny.en tokenizer."""
    tokenizer = WhisperTokenizer(tokenizer_file=str(whisper_tiny_dir() / "tokenizer.json"))
    assert tokenizer.convert_tokens_to_ids("<|notimestamps|>") == NO_TIMESTAMPS
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer)
    config = WhisperConfig(
        vocab_size=51864,  # 50363 text and special tokens + 1501 timestamp tokens
        num_mel_bins=80,
        max_source_positions=1500,  # 30 s windows
        max_target_positions=32,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        decoder_start_token_id=SOT,
        bos_token_id=SOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=SOT,
        bos_token_id=SOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
        no_timestamps_token_id=NO_TIMESTAMPS,
        prev_sot_token_id=PREV,
        is_multilingual=False,
        begin_suppress_tokens=[220, EOT],
        suppress_tokens=[],
        max_initial_timestamp_index=50,
        max_length=12,  # a short decode per window keeps the test fast
    )
    folder = tmp_path_factory.mktemp("hf-whisper")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def settings(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsrSettings:
    return AsrSettings(
        backend="transformers",
        model=str(model_dir),
        served_model_name="tiny-random-hf",
        model_cache_dir=tmp_path_factory.mktemp("cache"),
        offline=True,
        device="cpu",
        beam_size=1,
    )


@pytest.fixture(scope="module")
def backend(settings: AsrSettings) -> TransformersWhisperBackend:
    return TransformersWhisperBackend.load(settings)


def test_english_only_model(backend: TransformersWhisperBackend) -> None:
    assert backend.languages == frozenset({"en"})
    assert backend.model_name == "tiny-random-hf"


def test_decodes_short_and_long_audio(backend: TransformersWhisperBackend, spoken: dict[str, Audio]) -> None:
    short = next(iter(spoken.values()))
    long = np.concatenate([short, np.zeros(16_000 * 30, dtype=np.float32)])  # > 30 s: long-form generation
    for audio in (short, long):
        # A fixed temperature: one decode per window (0 would walk Whisper's whole fall-back schedule).
        transcript = backend.transcribe(audio, language=None, prompt="Hello", temperature=0.3)
        assert transcript.language == "en"
        assert transcript.duration_s == pytest.approx(audio.size / 16_000)
        assert isinstance(transcript.text, str)
        for segment in transcript.segments:
            assert 0.0 <= segment.start <= segment.end


@pytest.mark.anyio
async def test_serves_through_the_http_api(settings: AsrSettings, spoken: dict[str, Audio]) -> None:
    app = create_app(settings)  # the lifespan loads the transformers backend from the folder
    wav = encode_wav(next(iter(spoken.values())), 16_000)
    async with app.router.lifespan_context(app):
        assert isinstance(app.state.backend, TransformersWhisperBackend)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=120) as c:
            opea = await c.post("/v1/asr", json={"audio": base64.b64encode(wav).decode()})
            srt = await c.post(
                "/v1/audio/transcriptions",
                files={"file": ("a.wav", wav)},
                data={"response_format": "srt", "temperature": "0.5"},
            )
    assert opea.status_code == 200, opea.text
    assert isinstance(opea.json()["asr_result"], str)
    assert srt.status_code == 200, srt.text


def test_sizes_map_to_openai_repos() -> None:
    assert repo_for("small") == "openai/whisper-small"
    assert repo_for("turbo") == "openai/whisper-large-v3-turbo"
    assert repo_for("distil-whisper/distil-large-v3") == "distil-whisper/distil-large-v3"
    assert repo_for("enormous") is None


def test_missing_model_offline_names_repo_and_command(tmp_path: Path) -> None:
    settings = AsrSettings(backend="transformers", model="small", model_cache_dir=tmp_path, offline=True)
    with pytest.raises(WeightsMissingError) as missing:
        locate_model(settings)
    assert "openai/whisper-small" in str(missing.value) and "avatarchat download" in str(missing.value)
