"""The narrow contract between the LLM service and its backends, and the data that crosses it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from comps.core.sampling import SamplingParameters

FinishReason = Literal["stop", "length"]
MessageRole = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message as the backend sees it (OpenAI's `developer` role arrives as `system`)."""

    role: MessageRole
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. `None` sampling fields mean the model's own defaults.

    The sampling fields are `SamplingParameters`' under the same names (bounds checked there); `of` and
    `sampling_fields` are the one mapping each way.

    Attributes:
        messages: the conversation, persona already applied.
        max_tokens: completion budget in tokens; None means the service default, clamped to the context.
        temperature: 0 means greedy decoding.
        top_p: nucleus sampling mass in (0, 1].
        top_k: sample among the k most likely tokens.
        stop: strings that end the answer; they are not part of it.
        seed: makes sampling reproducible.
        presence_penalty: OpenAI's, subtracted once from every token already generated.
        frequency_penalty: OpenAI's, subtracted per occurrence of a token already generated.
        repetition_penalty: multiplicative (1 = none), as in vLLM/TGI/transformers.
    """

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None

    @classmethod
    def of(cls, messages: Iterable[Message], sampling: SamplingParameters) -> GenerationRequest:
        """The backend request for `messages`, sampled as `sampling` says."""
        values: dict[str, Any] = {name: getattr(sampling, name) for name in SamplingParameters.model_fields}
        values["stop"] = tuple(sampling.stop_sequences)
        return cls(messages=tuple(messages), **values)

    def sampling_fields(self) -> dict[str, Any]:
        """The sampling fields that are set, JSON-ready under their OpenAI names (`stop` as a list)."""
        values: dict[str, Any] = {name: getattr(self, name) for name in SamplingParameters.model_fields}
        values["stop"] = list(self.stop) or None
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class TokenUsage:
    """Token counts of one completion."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Generation:
    """A finished answer; `usage` is None only when a remote server did not report it."""

    text: str
    finish_reason: FinishReason
    usage: TokenUsage | None


@dataclass(frozen=True)
class StreamPiece:
    """One step of a streamed answer: text, and on the last piece the finish reason and usage."""

    text: str
    finish_reason: FinishReason | None = None
    usage: TokenUsage | None = None


class ChatBackend(Protocol):
    """A chat model behind the service. Failures are `comps.core.errors.ServiceError`s."""

    @property
    def model_name(self) -> str:
        """The model name answers carry."""
        ...

    @property
    def max_model_len(self) -> int | None:
        """The context window in tokens, when known."""
        ...

    async def complete(self, request: GenerationRequest) -> Generation:
        """Generate the whole answer."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamPiece]:
        """Generate the answer piece by piece; the last piece carries the finish reason.

        Closing the iterator early (the client went away) stops the generation.
        """
        ...
