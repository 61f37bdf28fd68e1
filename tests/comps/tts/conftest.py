"""TTS test fixtures: the real Piper voice loaded once, and a tiny random SpeechT5 saved to disk."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from support.models import piper_voice_paths

from comps.tts.backends.piper import PiperBackend
from comps.tts.weights import PiperFiles

# Characters the tiny tokenizer learns; anything else becomes <unk>, as with the real one.
_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, how are you today? I am fine; thank you!",
    "one two three four five six seven eight nine ten hundred thousand",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz .,;:?!'-",
] * 4


@pytest.fixture(scope="session")
def piper_backend() -> PiperBackend:
    paths = piper_voice_paths()
    files = PiperFiles(model=paths.model, config=paths.config)
    return PiperBackend(voices={"default": files, "en_US-joe-medium": files})


@dataclass(frozen=True)
class TinySpeechT5:
    """Folders and voice files of a tiny random SpeechT5 + HiFi-GAN, loadable with from_pretrained."""

    model_dir: Path
    vocoder_dir: Path
    voices_dir: Path
    reduction_factor: int
    hop: int


@pytest.fixture(scope="session")
def tiny_speecht5(tmp_path_factory: pytest.TempPathFactory) -> TinySpeechT5:
    import sentencepiece as spm
    from transformers import (
        SpeechT5Config,
        SpeechT5ForTextToSpeech,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        SpeechT5Tokenizer,
    )

    root = tmp_path_factory.mktemp("speecht5")
    model_dir, vocoder_dir, voices_dir = root / "tts", root / "hifigan", root / "voices"
    model_dir.mkdir()
    voices_dir.mkdir()
    # A character-level sentencepiece model like microsoft/speecht5_tts's spm_char.model,
    # with the same special ids (<s>=0, <pad>=1, </s>=2, <unk>=3).
    model_file = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS),
        model_writer=model_file,
        model_type="char",
        vocab_size=64,
        bos_id=0,
        pad_id=1,
        eos_id=2,
        unk_id=3,
        character_coverage=1.0,
        minloglevel=2,
    )
    (model_dir / "spm_char.model").write_bytes(model_file.getvalue())
    tokenizer = SpeechT5Tokenizer(vocab_file=str(model_dir / "spm_char.model"))
    config = SpeechT5Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        speech_decoder_prenet_units=32,
        speech_decoder_postnet_units=32,
        speech_decoder_postnet_layers=2,
        max_text_positions=120,
        max_speech_positions=4000,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    torch.manual_seed(0)
    model: Any = SpeechT5ForTextToSpeech(config).eval()
    with torch.no_grad():
        # The stop-token logit is pinned far below the threshold, so generation always runs to
        # its bound (int(encoder length * 20 / reduction factor) steps): audio length is then exact.
        model.speech_decoder_postnet.prob_out.weight.zero_()
        model.speech_decoder_postnet.prob_out.bias.fill_(-1e4)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    vocoder_config = SpeechT5HifiGanConfig(
        upsample_initial_channel=16,
        upsample_rates=[4, 4, 4, 4],
        upsample_kernel_sizes=[8, 8, 8, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1]],
        sampling_rate=16_000,
    )
    SpeechT5HifiGan(vocoder_config).save_pretrained(vocoder_dir)
    rng = np.random.default_rng(0)
    np.save(voices_dir / "default.npy", rng.standard_normal(512).astype(np.float32))
    torch.save(torch.from_numpy(rng.standard_normal((1, 512)).astype(np.float32)), voices_dir / "spk_embed_male.pt")
    np.save(voices_dir / "narrator.npy", rng.standard_normal(512).astype(np.float32))
    return TinySpeechT5(model_dir, vocoder_dir, voices_dir, reduction_factor=config.reduction_factor, hop=256)


@pytest.fixture
def one_torch_thread() -> Any:
    # Two shared cores: OpenMP threads spinning against other processes make tiny models ~20x slower.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
