"""Between the OpenAI schema and the backends: persona, request mapping, answers and stream chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator

from comps.core.sse import sse_event
from comps.llm.backends.base import Generation, GenerationRequest, Message, MessageRole, StreamPiece, TokenUsage
from comps.llm.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    Usage,
    completion_id,
    dump,
)

# OpenAI's `developer` role is the newer name of `system`; chat templates only know `system`.
_ROLES: dict[str, MessageRole] = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def to_generation(body: ChatCompletionRequest, *, system_prompt: str) -> GenerationRequest:
    """Map an API request to a backend request, prepending the persona when there is no system message."""
    messages = [Message(role=_ROLES[m.role], content=m.content) for m in body.messages]
    if system_prompt and not any(m.role == "system" for m in messages):
        messages.insert(0, Message(role="system", content=system_prompt))
    sampling = body.sampling().model_copy(update={"max_tokens": body.requested_max_tokens})
    return GenerationRequest.of(messages, sampling)


def _usage(usage: TokenUsage | None) -> Usage | None:
    if usage is None:
        return None
    return Usage(
        prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, total_tokens=usage.total_tokens
    )


def to_completion(result: Generation, *, model: str) -> ChatCompletion:
    """A backend answer as `chat.completion`."""
    return ChatCompletion(
        model=model,
        choices=[Choice(message=AssistantMessage(content=result.text), finish_reason=result.finish_reason)],
        usage=_usage(result.usage),
    )


async def chunk_events(
    first: StreamPiece, rest: AsyncIterator[StreamPiece], *, model: str, include_usage: bool
) -> AsyncIterator[str]:
    """Server-sent `chat.completion.chunk` events: the role, the text pieces, the finish reason, then usage.

    `first` was already taken from the backend (so errors before any byte became a proper status);
    closing this iterator closes `rest`, which stops the generation.
    """
    stream_id = completion_id()

    def chunk(delta: Delta, finish: StreamPiece | None = None) -> str:
        reason = finish.finish_reason if finish is not None else None
        choice = ChunkChoice(delta=delta, finish_reason=reason)
        return sse_event(dump(ChatCompletionChunk(id=stream_id, model=model, choices=[choice])))

    piece: StreamPiece | None = first
    try:
        yield chunk(Delta(role="assistant", content=""))
        while piece is not None:
            if piece.text:
                yield chunk(Delta(content=piece.text))
            if piece.finish_reason is not None:
                yield chunk(Delta(), piece)
                if include_usage:
                    final = ChatCompletionChunk(id=stream_id, model=model, choices=[], usage=_usage(piece.usage))
                    yield sse_event(dump(final))
                return
            piece = await anext(rest, None)
    finally:
        close = getattr(rest, "aclose", None)
        if close is not None:
            await close()
