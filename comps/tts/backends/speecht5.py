"""SpeechT5 + HiFi-GAN through transformers: batched chunks, one x-vector per voice, pitch-kept tempo."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from comps.core.device import Device
from comps.core.text import split_text
from comps.tts.backends.base import DEFAULT_VOICE, Samples, VoiceError

logger = logging.getLogger(__name__)

# OPEA batches SpeechT5 input in ~100-character pieces; attention quality drops on much longer
# inputs, so chunks stay under 150 characters (the tokenizer is character level: ~1 token each).
SPEECHT5_CHUNK_CHARS = 150
# transformers' default bound on generated frames: at most 20 mel frames per encoder position.
MAX_LENGTH_RATIO = 20.0


def find_xvectors(folder: Path | None) -> dict[str, Path]:
    """Every `<name>.npy` / `<name>.pt` x-vector in `folder`, keyed by `<name>` (`spk_embed_` prefix dropped)."""
    if folder is None:
        return {}
    found: dict[str, Path] = {}
    for path in sorted([*folder.glob("*.npy"), *folder.glob("*.pt")]):
        found.setdefault(path.stem.removeprefix("spk_embed_"), path)
    return found


def load_xvector(path: Path, *, dim: int) -> Any:
    """Read a speaker x-vector (.npy array or a torch tensor .pt) of `dim` values as a (1, dim) float tensor.

    Raises:
        VoiceError: unreadable file or the wrong number of values.
    """
    import torch

    try:
        if path.suffix == ".pt":
            values = torch.load(path, map_location="cpu", weights_only=True)
        else:
            values = torch.from_numpy(np.load(path, allow_pickle=False))
    except Exception as exc:  # numpy and torch raise many types for a bad file
        raise VoiceError(f"x-vector {path} could not be read: {exc}") from exc
    if not isinstance(values, torch.Tensor) or values.numel() != dim:
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise VoiceError(f"x-vector {path} must hold {dim} values, found {shape}")
    return values.reshape(1, dim).to(torch.float32)


class SpeechT5Backend:
    """microsoft/speecht5_tts with the HiFi-GAN vocoder; voices are speaker x-vectors."""

    def __init__(
        self,
        *,
        model_dir: Path,
        vocoder_dir: Path,
        speakers: dict[str, Path],
        device: Device,
        max_batch: int = 8,
    ) -> None:
        """Load the tokenizer, model, vocoder and every x-vector.

        Args:
            model_dir: a folder saved with `save_pretrained` (config, weights, `spm_char.model`).
            vocoder_dir: the HiFi-GAN folder.
            speakers: voice name -> x-vector file; must contain `default`.
            device: where to run.
            max_batch: the most chunks in one forward pass.
        """
        import torch
        from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Tokenizer

        if DEFAULT_VOICE not in speakers:
            raise VoiceError("the SpeechT5 voices must include a 'default' x-vector")
        self._torch = torch
        self._device = device.torch_device
        # normalize=True spells numbers out ("3" -> "three"), as OPEA's processor does.
        self._tokenizer = SpeechT5Tokenizer.from_pretrained(str(model_dir), normalize=True)
        # transformers' stubs type `.to()` oddly; the models are plain torch modules here.
        model: Any = SpeechT5ForTextToSpeech.from_pretrained(str(model_dir))
        vocoder: Any = SpeechT5HifiGan.from_pretrained(str(vocoder_dir))
        self._model = model.to(self._device).eval()
        self._vocoder = vocoder.to(self._device).eval()
        dim = int(self._model.config.speaker_embedding_dim)
        self._speakers = {name: load_xvector(path, dim=dim).to(self._device) for name, path in speakers.items()}
        self._max_tokens = int(self._model.config.max_text_positions)
        self._max_batch = max_batch
        self.sample_rate = int(self._vocoder.config.sampling_rate)
        self.max_chunk_chars = min(SPEECHT5_CHUNK_CHARS, max(16, self._max_tokens // 2))

    @property
    def voices(self) -> list[str]:
        """`default`, then the other speakers in alphabetical order."""
        return [DEFAULT_VOICE, *sorted(name for name in self._speakers if name != DEFAULT_VOICE)]

    def _fit_tokens(self, chunk: str) -> list[str]:
        """Split a chunk again if number spelling made it longer than the model's text positions."""
        if len(self._tokenizer(chunk)["input_ids"]) <= self._max_tokens or len(chunk) <= 1:
            return [chunk]
        return [
            piece for half in split_text(chunk, max_chars=max(1, len(chunk) // 2)) for piece in self._fit_tokens(half)
        ]

    def synthesize(self, chunks: list[str], *, voice: str, speed: float) -> list[Samples]:
        """Speak the chunks in batches of `max_batch`; `speed` stretches the mel frames in time before vocoding."""
        # Each chunk becomes one or more model-sized pieces; the pieces of all chunks share batches.
        owner: list[int] = []
        pieces: list[str] = []
        for index, chunk in enumerate(chunks):
            fitted = self._fit_tokens(chunk)
            pieces.extend(fitted)
            owner.extend([index] * len(fitted))
        audio: list[Samples] = []
        for start in range(0, len(pieces), self._max_batch):
            audio.extend(self._batch(pieces[start : start + self._max_batch], voice, speed))
        out: list[list[Samples]] = [[] for _ in chunks]
        for index, samples in zip(owner, audio, strict=True):
            out[index].append(samples)
        return [np.concatenate(parts) for parts in out]

    def _batch(self, texts: list[str], voice: str, speed: float) -> list[Samples]:
        torch = self._torch
        inputs = self._tokenizer(texts, padding=True, return_tensors="pt")
        speaker = self._speakers[voice].expand(len(texts), -1)
        with torch.inference_mode():
            spectrograms, lengths = self._model.generate_speech(
                inputs["input_ids"].to(self._device),
                speaker_embeddings=speaker,
                attention_mask=inputs["attention_mask"].to(self._device),
                maxlenratio=MAX_LENGTH_RATIO,
                return_output_lengths=True,
            )
            # spectrograms: (batch, frames, mel bins), zero-padded past each item's length.
            mels = [spectrograms[i, : int(n)] for i, n in enumerate(lengths)]
            if speed != 1.0:
                mels = [_stretch(mel, speed) for mel in mels]
            frames = [mel.shape[0] for mel in mels]
            padded = torch.nn.utils.rnn.pad_sequence(mels, batch_first=True)
            waves = self._vocoder(padded)  # (batch, samples); samples = frames * hop (256)
            waves = waves.reshape(len(texts), -1)
            hop = waves.shape[1] // max(frames)
        return [waves[i, : n * hop].float().cpu().numpy().clip(-1.0, 1.0) for i, n in enumerate(frames)]


def _stretch(mel: Any, speed: float) -> Any:
    """Resample a (frames, bins) mel spectrogram along time: tempo changes, the spectrum (pitch) does not."""
    import torch

    frames = max(1, round(mel.shape[0] / speed))
    stretched = torch.nn.functional.interpolate(mel.T.unsqueeze(0), size=frames, mode="linear", align_corners=True)
    return stretched.squeeze(0).T
