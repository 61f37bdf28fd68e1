"""Request and response models of the OpenAI-compatible transcription endpoint (OPEA's are in comps.core.contracts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]

WHISPER_1 = "whisper-1"
"""The model name OpenAI clients send by default; accepted as an alias of whatever model is loaded."""


class DurationUsage(BaseModel):
    """OpenAI's usage block for audio-billed models: the audio length in whole seconds (rounded up)."""

    type: Literal["duration"] = "duration"
    seconds: int


class Transcription(BaseModel):
    """`response_format=json`."""

    text: str
    usage: DurationUsage | None = None


class VerboseSegment(BaseModel):
    """One segment of `verbose_json`; decoder statistics are null where the backend does not report them."""

    id: int
    seek: int = Field(description="the 10 ms mel frame where the segment starts")
    start: float = Field(description="seconds from the start of the audio")
    end: float = Field(description="seconds from the start of the audio")
    text: str
    tokens: list[int]
    temperature: float | None
    avg_logprob: float | None
    compression_ratio: float | None
    no_speech_prob: float | None


class VerboseTranscription(BaseModel):
    """`response_format=verbose_json`: the text, its language (English name, as OpenAI answers), duration, segments."""

    task: Literal["transcribe"] = "transcribe"
    language: str
    duration: float = Field(description="seconds of audio")
    text: str
    segments: list[VerboseSegment]
    usage: DurationUsage | None = None
