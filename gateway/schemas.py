"""The gateway's request (OPEA's AudioChatCompletionRequest plus optional fields) and its detailed answer."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from comps.core.contracts import SadTalkerOptions
from comps.core.sampling import MaxTokens, Penalty, RepetitionPenalty, SamplingParameters, Temperature, TopK, TopP
from megaservice.avatarchatbot import AvatarParameters
from megaservice.chat import ChatMessage

GATEWAY_MAX_TOKENS_LIMIT = 8192
"""The gateway's own cap, below the LLM's (GATEWAY_MAX_TOKENS has the same): each token becomes video, and at
128 tokens ~ 35 s, 8192 is already over half an hour."""

GATEWAY_MAX_TEXT_CHARS_LIMIT = 100_000
"""The bound of GATEWAY_MAX_TEXT_CHARS, which sets the typed question's limit (checked in `routes`)."""


class AvatarChatRequest(SamplingParameters):
    """`POST /v1/avatarchatbot`: OPEA's fields with OPEA's defaults, except `max_tokens` (ours: the setting).

    The sampling fields and their bounds are `SamplingParameters`' (redeclared here only for OPEA's defaults).

    Ours, all optional: `text` (a typed question; ASR is skipped), `avatar`, `inference_mode`, `fps`,
    `animation_options` (SadTalker's), `language`, `seed`, and `detailed` (answer with JSON instead of
    OPEA's bare video path).
    """

    model_config = ConfigDict(extra="ignore")

    audio: str | None = Field(default=None, description="base64 of the spoken question (any audio format)")
    text: str | None = Field(
        default=None,
        max_length=GATEWAY_MAX_TEXT_CHARS_LIMIT,
        description="a typed question instead of audio (at most GATEWAY_MAX_TEXT_CHARS characters, 8000 by default)",
    )
    voice: str | None = Field(default="default", description="TTS voice; 'default' is the service's own")
    messages: str | list[dict[str, Any]] | None = Field(default=None, description="earlier turns (role, content)")
    model: str | None = None
    temperature: Temperature | None = 0.01
    top_p: TopP | None = 0.95
    top_k: TopK | None = 10
    n: int | None = Field(default=1, ge=1, le=1, description="one answer per request")
    max_tokens: Annotated[MaxTokens, Field(le=GATEWAY_MAX_TOKENS_LIMIT)] | None = Field(
        default=None, description="default: GATEWAY_MAX_TOKENS (128)"
    )
    stream: bool | None = Field(default=False, description="ignored here; use /v1/avatarchatbot/stream")
    presence_penalty: Penalty | None = 0.0
    frequency_penalty: Penalty | None = 0.0
    repetition_penalty: RepetitionPenalty | None = 1.03
    user: str | None = None
    language: str | None = Field(default=None, max_length=16, description="spoken language for ASR")
    avatar: str | None = Field(default=None, max_length=200, description="avatar id (GET /v1/avatars)")
    inference_mode: str | None = Field(default=None, max_length=64)
    fps: float | None = Field(default=None, gt=0, le=60)
    animation_options: SadTalkerOptions | None = Field(
        default=None, description="SadTalker modes: still, expression_scale, pose_style, seed, input_yaw/pitch/roll"
    )
    detailed: bool = Field(default=False, description="answer with transcript, text, video_url and timings")

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("text is empty")
        return value

    @model_validator(mode="after")
    def _one_question(self) -> AvatarChatRequest:
        if self.text is None and not self.audio:
            raise ValueError("give `audio` (base64 of the spoken question) or `text`")
        self.history()  # refuse malformed turns here, as a 400
        return self

    def history(self) -> tuple[ChatMessage, ...]:
        """Earlier turns from `messages` (a bare string is OPEA's single prompt, not history: ignored)."""
        if not isinstance(self.messages, list):
            return ()
        turns = []
        for index, message in enumerate(self.messages):
            role, content = message.get("role"), message.get("content")
            if role not in ("system", "user", "assistant") or not isinstance(content, str):
                raise ValueError(f"messages[{index}] needs role system/user/assistant and a string content")
            turns.append(ChatMessage(role=role, content=content))
        return tuple(turns)

    def parameters(
        self, *, max_tokens: int, model: str | None, system_prompt: str | None, min_chars: int
    ) -> AvatarParameters:
        """Map every field to its stage, exactly as given (no `or` defaults: 0 stays 0)."""
        sampling = self.sampling()
        if sampling.max_tokens is None:
            sampling = sampling.model_copy(update={"max_tokens": max_tokens})
        return AvatarParameters(
            sampling=sampling,
            model=self.model if self.model is not None else model, system_prompt=system_prompt,
            history=self.history(), language=self.language,
            voice=None if self.voice in (None, "", "default") else self.voice,
            avatar=self.avatar, inference_mode=self.inference_mode, fps=self.fps,
            animation_options=self.animation_options, sentence_min_chars=min_chars,
        )  # fmt: skip


class DetailedAnswer(BaseModel):
    """The opt-in answer (`"detailed": true`)."""

    id: str = Field(description="the video id")
    transcript: str = Field(description="what ASR heard (the typed text when `text` was given)")
    answer: str = Field(description="what the LLM answered, as spoken")
    video_url: str = Field(description="a URL on this gateway that serves the mp4 (Range supported)")
    video_path: str = Field(description="the animation service's own path (OPEA's answer)")
    duration_s: float | None = None
    frames: int | None = None
    fps: float | None = None
    timings: dict[str, float] = Field(description="seconds per stage and in total")
