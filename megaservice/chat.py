"""The narrow OpenAI chat-completions contract the LLM node speaks (ours, vLLM, TGI and Ollama alike)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from comps.core.sampling import SamplingParameters


class ChatMessage(BaseModel):
    """One message."""

    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(SamplingParameters):
    """`POST /v1/chat/completions`; unset fields are left out so the server's defaults apply.

    The sampling fields and their bounds are the LLM service's own (`SamplingParameters`); unknown fields
    are refused here, so a typo fails in the orchestrator rather than being ignored by the server.
    """

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
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
