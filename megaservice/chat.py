"""The narrow OpenAI chat-completions contract the LLM node speaks (ours, vLLM, TGI and Ollama alike)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChatMessage(BaseModel):
    """One message."""

    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    """`POST /v1/chat/completions`; unset fields are left out so the server's defaults apply.

    `top_k` and `repetition_penalty` are the vLLM/TGI extensions our LLM service also accepts.
    """

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    repetition_penalty: float | None = Field(default=None, gt=0.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=0)
    stream: bool = False


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ChatAnswer(_Lenient):
    """The assistant message of a choice."""

    role: str = "assistant"
    content: str | None = None


class ChatChoice(_Lenient):
    """One choice of a completion."""

    index: int = 0
    message: ChatAnswer
    finish_reason: str | None = None


class ChatResponse(_Lenient):
    """A (non-streamed) chat completion; only what the graph reads is required."""

    id: str | None = None
    model: str | None = None
    choices: list[ChatChoice] = Field(min_length=1)

    @property
    def text(self) -> str:
        """The first choice's text ("" when the model said nothing)."""
        return self.choices[0].message.content or ""


def decode_chunk(data: Any) -> str | None:
    """The text delta of one `chat.completion.chunk` event, or None for a chunk without text."""
    choices = data.get("choices") or []
    if not choices:
        return None  # e.g. the final usage chunk
    delta = choices[0].get("delta") or {}
    content = delta.get("content")
    return str(content) if content else None
