"""The OpenAI-style sampling fields and their bounds, defined once for the gateway, orchestrator and LLM service."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

# Above the largest common context window (128 Ki tokens); anything beyond is a client mistake.
MAX_TOKENS_LIMIT = 131_072
MAX_STOP_SEQUENCES = 16


def _check_stop(value: str | list[str]) -> str | list[str]:
    sequences = [value] if isinstance(value, str) else value
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
    if any(not s for s in sequences):
        raise ValueError("stop sequences must not be empty")
    return value


# The bounds. Each is an Annotated type so a model can give a field another default and keep its bounds.
MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
TopP = Annotated[float, Field(gt=0.0, le=1.0)]
TopK = Annotated[int, Field(ge=1)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]
"""OpenAI's additive presence/frequency penalty."""
RepetitionPenalty = Annotated[float, Field(gt=0.0, le=10.0)]
"""Multiplicative (1 = none), as in vLLM/TGI/transformers; 10 already forbids any repeat in practice."""
Seed = Annotated[int, Field(ge=0, le=2**63 - 1)]
Stop = Annotated[str | list[str], AfterValidator(_check_stop)]


class SamplingParameters(BaseModel):
    """How to sample an answer; None leaves a field to the server's default (OpenAI's: temperature 1, top_p 1).

    `temperature=0` means greedy decoding, exactly. `top_k` and `repetition_penalty` are the vLLM/TGI
    extensions. Request models inherit these fields (and may redeclare one with another default using
    the same type); what they set beyond them is theirs.
    """

    max_tokens: MaxTokens | None = Field(default=None, description="completion budget in tokens")
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = Field(default=None, description="extension: sample among the k most likely tokens")
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    repetition_penalty: RepetitionPenalty | None = Field(
        default=None, description="extension: multiplicative penalty (1 = none), as in vLLM/TGI"
    )
    stop: Stop | None = Field(default=None, description=f"up to {MAX_STOP_SEQUENCES} non-empty strings")
    seed: Seed | None = None

    @property
    def stop_sequences(self) -> list[str]:
        """`stop` as a list."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def sampling(self) -> SamplingParameters:
        """Only the sampling fields, as the shared model (what a request model adds is left behind)."""
        values: dict[str, Any] = {name: getattr(self, name) for name in SamplingParameters.model_fields}
        return SamplingParameters.model_validate(values)
