"""OpenAI chat-completion schemas: the request (with our extensions), the response, stream chunks and models."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictStr,
    field_validator,
    model_serializer,
)

from comps.core.sampling import MaxTokens, SamplingParameters

Role = Literal["system", "developer", "user", "assistant"]
FinishReason = Literal["stop", "length"]


def _join_text_parts(value: object) -> object:
    """Turn OpenAI content parts (`[{"type": "text", "text": ...}]`) into one string; refuse other parts."""
    if not isinstance(value, list):
        return value
    texts: list[str] = []
    for index, part in enumerate(value):
        if not isinstance(part, dict):
            raise ValueError(f"content part {index} must be an object like {{'type': 'text', 'text': '...'}}")
        kind = part.get("type")
        if kind != "text":
            raise ValueError(f"content part {index} has type {kind!r}; only 'text' parts are supported")
        text = part.get("text")
        if not isinstance(text, str):
            raise ValueError(f"content part {index} needs a string 'text'")
        texts.append(text)
    return "".join(texts)


class ChatMessage(BaseModel):
    """One message of the conversation; content is a string (text parts are joined into one)."""

    model_config = ConfigDict(extra="ignore")

    role: Role
    content: StrictStr
    name: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _content_parts(cls, value: object) -> object:
        return _join_text_parts(value)


class StreamOptions(BaseModel):
    """OpenAI `stream_options`: `include_usage` adds a final chunk carrying usage."""

    include_usage: bool = False


class ChatCompletionRequest(SamplingParameters):
    """`POST /v1/chat/completions`: OpenAI's fields plus `top_k` and `repetition_penalty` (vLLM/TGI extensions).

    The sampling fields and their bounds are `SamplingParameters`'; unset ones take the backend's defaults.
    """

    # Unknown fields are ignored, as OpenAI-compatible servers do, so OPEA clients keep working.
    model_config = ConfigDict(extra="ignore")

    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
    max_completion_tokens: MaxTokens | None = None
    n: int = Field(default=1, ge=1, le=1, description="only one choice per request is served")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @property
    def requested_max_tokens(self) -> int | None:
        """The completion budget the caller asked for (`max_completion_tokens` wins over `max_tokens`)."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class Usage(BaseModel):
    """Token counts of one completion."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    """The answer message."""

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """One answer of a non-streaming completion."""

    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


def completion_id() -> str:
    """A fresh OpenAI-style completion id."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def _now() -> int:
    return int(time.time())


class ChatCompletion(BaseModel):
    """`chat.completion`: the non-streaming answer."""

    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[Choice]
    usage: Usage | None = None  # None only when a remote server did not report token counts
    system_fingerprint: str | None = None


class Delta(BaseModel):
    """What a stream chunk adds to the answer; unset fields are left out, as OpenAI does."""

    role: Literal["assistant"] | None = None
    content: str | None = None

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


class ChunkChoice(BaseModel):
    """One choice of a stream chunk."""

    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """`chat.completion.chunk`: one server-sent event of a streaming answer."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    """One entry of `GET /v1/models`."""

    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=_now)
    owned_by: str = "avatarchat"
    max_model_len: int | None = None


class ModelList(BaseModel):
    """`GET /v1/models`."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


def dump(model: BaseModel) -> dict[str, Any]:
    """JSON-ready dict of a response model."""
    return model.model_dump(mode="json")
