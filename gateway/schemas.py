"""The gateway's request (OPEA's AudioChatCompletionRequest plus optional fields) and its detailed answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from comps.core.contracts import SadTalkerOptions
from megaservice.avatarchatbot import AvatarParameters
from megaservice.chat import ChatMessage


class AvatarChatRequest(BaseModel):
    """`POST /v1/avatarchatbot`: OPEA's fields with OPEA's defaults, except `max_tokens` (ours: the setting).

    Ours, all optional: `text` (a typed question; ASR is skipped), `avatar`, `inference_mode`, `fps`,
    `animation_options` (SadTalker's), `language`, `seed`, and `detailed` (answer with JSON instead of
    OPEA's bare video path).
    """

    model_config = ConfigDict(extra="ignore")

    audio: str | None = Field(default=None, description="base64 of the spoken question (any audio format)")
    text: str | None = Field(default=None, max_length=8000, description="a typed question instead of audio")
    voice: str | None = Field(default="default", description="TTS voice; 'default' is the service's own")
    messages: str | list[dict[str, Any]] | None = Field(default=None, description="earlier turns (role, content)")
    model: str | None = None
    temperature: float | None = Field(default=0.01, ge=0.0, le=2.0)
    top_p: float | None = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int | None = Field(default=10, ge=1)
    n: int | None = Field(default=1, ge=1, le=1, description="one answer per request")
    max_tokens: int | None = Field(default=None, ge=1, le=8192, description="default: GATEWAY_MAX_TOKENS (128)")
    stop: str | list[str] | None = None
    stream: bool | None = Field(default=False, description="ignored here; use /v1/avatarchatbot/stream")
    presence_penalty: float | None = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=0.0, ge=-2.0, le=2.0)
    repetition_penalty: float | None = Field(default=1.03, gt=0.0, le=10.0)
    user: str | None = None
    seed: int | None = Field(default=None, ge=0)
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
        return AvatarParameters(
            max_tokens=self.max_tokens if self.max_tokens is not None else max_tokens,
            temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
            frequency_penalty=self.frequency_penalty, presence_penalty=self.presence_penalty,
            repetition_penalty=self.repetition_penalty, stop=self.stop, seed=self.seed,
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
