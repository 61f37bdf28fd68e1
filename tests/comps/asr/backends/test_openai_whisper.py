"""openai-whisper's own model code with tiny random dimensions, loaded from a checkpoint by path."""

from __future__ import annotations

import base64
from dataclasses import asdict
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from whisper.model import ModelDimensions, Whisper

from comps.asr.app import create_app
from comps.asr.backends.base import Audio
from comps.asr.backends.openai_whisper import OpenAIWhisperBackend, checkpoint_spec, locate_checkpoint
from comps.asr.settings import AsrSettings
from comps.core.audio import encode_wav
from comps.core.weights import WeightsMissingError

# Real Whisper geometry where the code depends on it (80 mel bins, 1500 audio frames per 30 s,
# the multilingual tokenizer's 51865 ids), tiny everywhere else so a decode takes moments.
# n_text_ctx=16 caps each window's decode at 8 tokens (openai-whisper samples n_text_ctx // 2).
DIMS = ModelDimensions(
    n_mels=80, n_audio_ctx=1500, n_audio_state=16, n_audio_head=2, n_audio_layer=1,
    n_vocab=51865, n_text_ctx=16, n_text_state=16, n_text_head=2, n_text_layer=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = Whisper(DIMS)
    # openai-whisper allocates the decoder's positional embedding with torch.empty (a checkpoint always
    # fills it); a random model must fill it too, or it holds whatever memory was there (sometimes NaN).
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.02)
    path = tmp_path_factory.mktemp("openai-whisper") / "tiny-random.pt"
    torch.save({"dims": asdict(DIMS), "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def settings(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> AsrSettings:
    return AsrSettings(
        backend="openai-whisper",
        model=str(checkpoint),
        model_cache_dir=tmp_path_factory.mktemp("cache"),
        offline=True,
        device="cpu",
        beam_size=2,
    )


@pytest.fixture(scope="module")
def backend(settings: AsrSettings) -> OpenAIWhisperBackend:
    return OpenAIWhisperBackend.load(settings)


def test_loads_the_checkpoint_by_path(backend: OpenAIWhisperBackend, checkpoint: Path) -> None:
    assert backend.model_name == "tiny-random"
    assert "de" in backend.languages and len(backend.languages) == 100


def test_decodes_long_audio_end_to_end(backend: OpenAIWhisperBackend, spoken: dict[str, Audio]) -> None:
    audio = np.concatenate([*spoken.values(), np.zeros(16_000 * 25, dtype=np.float32)])  # > 30 s: two windows
    # A fixed temperature: one decode per window (the fall-back schedule is exercised over HTTP below).
    transcript = backend.transcribe(audio, language="de", prompt="Guten Tag", temperature=0.3)
    assert transcript.language == "de"
    assert transcript.duration_s == pytest.approx(audio.size / 16_000)
    assert isinstance(transcript.text, str)
    for segment in transcript.segments:
        assert 0.0 <= segment.start <= segment.end
        assert segment.temperature == 0.3 and segment.avg_logprob is not None


@pytest.mark.anyio
async def test_serves_through_the_http_api(
    settings: AsrSettings, backend: OpenAIWhisperBackend, spoken: dict[str, Audio]
) -> None:
    app = create_app(settings, backend=backend)
    wav = encode_wav(next(iter(spoken.values())), 16_000)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=120) as c,
    ):
        opea = await c.post("/v1/asr", json={"audio": base64.b64encode(wav).decode(), "language": "en"})
        verbose = await c.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", wav)},
            data={"response_format": "verbose_json", "language": "fr"},
        )
    assert opea.status_code == 200, opea.text
    assert isinstance(opea.json()["asr_result"], str)
    assert verbose.status_code == 200, verbose.text
    assert verbose.json()["language"] == "french"
    # No temperature given: every window went through Whisper's fall-back schedule.
    assert all(s["temperature"] in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) for s in verbose.json()["segments"])


@pytest.mark.anyio
async def test_lifespan_loads_openai_whisper_from_settings(settings: AsrSettings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert isinstance(app.state.backend, OpenAIWhisperBackend)


def test_official_names_resolve_to_release_urls() -> None:
    spec = checkpoint_spec("small")
    assert spec.url is not None and spec.url.endswith("/small.pt")
    assert spec.sha256 is not None and spec.sha256 in spec.url
    with pytest.raises(ValueError, match="tiny.en"):
        checkpoint_spec("enormous")


def test_missing_checkpoint_offline_names_file_and_command(tmp_path: Path) -> None:
    settings = AsrSettings(backend="openai-whisper", model="small", model_cache_dir=tmp_path, offline=True)
    with pytest.raises(WeightsMissingError) as missing:
        locate_checkpoint(settings)
    message = str(missing.value)
    assert "small.pt" in message and str(tmp_path) in message and "avatarchat download" in message


def test_cached_checkpoint_is_found_offline(tmp_path: Path, checkpoint: Path) -> None:
    cached = tmp_path / "whisper" / "openai-whisper" / "small.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(checkpoint.read_bytes())
    settings = AsrSettings(backend="openai-whisper", model="small", model_cache_dir=tmp_path, offline=True)
    assert locate_checkpoint(settings) == cached
