"""Decoding pieces for the transformers backend: seeded sampling, OpenAI penalties, stop strings, cancellation.

Sampling is done by our own logits processor with a per-request `torch.Generator`, and `generate` then
runs greedy over a one-hot result: no request touches torch's global RNG, so a `seed` reproduces the
same answer even while other requests sample concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch


class SeededSampler:
    """Logits processor that draws the next token (temperature, top-k, top-p) and masks every other token.

    Applied last; `generate(do_sample=False)` then picks the drawn token. The arithmetic and the draw happen
    on the CPU in float64, so the same seed gives the same tokens on every device for the same scores.
    """

    def __init__(self, *, temperature: float, top_k: int | None, top_p: float | None, seed: int) -> None:
        """Create the sampler; `temperature` must be > 0 (0 is plain greedy, without this processor)."""
        if temperature <= 0:
            raise ValueError("SeededSampler needs temperature > 0; use greedy decoding for 0")
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Scores (batch, vocab) → 0 at the drawn token, -inf elsewhere."""
        # float64 on the CPU (Gaudi has no float64), shifted so the best logit is 0 (softmax does not change):
        # even the smallest temperature > 0 (5e-324, which float32 rounds to 0) then gives the best token(s) 0
        # and the rest -inf, never NaN.
        logits = scores.detach().to("cpu", torch.float64)
        logits = (logits - logits.max(dim=-1, keepdim=True).values) / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p is not None and self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            sorted_probs = sorted_logits.softmax(dim=-1)
            # Drop a token when the mass before it already reaches top_p; the most likely token always stays.
            drop_sorted = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= self.top_p
            drop_sorted[..., 0] = False  # also when top_p is below any probability
            drop = drop_sorted.scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        probs = logits.softmax(dim=-1)
        drawn = torch.multinomial(probs, num_samples=1, generator=self.generator).to(scores.device)
        masked = torch.full_like(scores, float("-inf"))
        return masked.scatter(-1, drawn, 0.0)  # type: ignore[return-value]


class RepetitionPenalty:
    """The multiplicative repetition penalty of transformers, vLLM and TGI, over every token seen (prompt included).

    A seen token's logit is divided by `penalty` when positive and multiplied by it when not (1 = none, below 1
    rewards repeats). Any penalty > 0 is valid, but in the scores' dtype a tiny one rounds to 0 (5e-324 does in
    float32, and transformers' own processor then makes inf and NaN): it is raised to the dtype's smallest normal
    number, and a quotient beyond the dtype's range stops at its largest value. Scores keep their dtype and device.
    """

    def __init__(self, *, penalty: float) -> None:
        """Create the processor; `penalty` must be > 0."""
        if not penalty > 0:
            raise ValueError(f"repetition penalty must be > 0, got {penalty}")
        self.penalty = penalty

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Penalize the scores (batch, vocab) of the tokens in `input_ids` (batch, length)."""
        limits = torch.finfo(scores.dtype)
        penalty = max(self.penalty, limits.tiny)
        seen = scores.gather(-1, input_ids)
        penalized = torch.where(seen < 0, seen * penalty, (seen / penalty).clamp(max=limits.max))
        return scores.scatter(-1, input_ids, penalized)  # type: ignore[return-value]


class OpenAIPenalties:
    """OpenAI's presence and frequency penalties over the tokens generated so far (the prompt is not counted).

    `logit[t] -= frequency_penalty * count[t] + presence_penalty * (count[t] > 0)`, as OpenAI and vLLM define them.
    """

    def __init__(self, *, presence_penalty: float, frequency_penalty: float, prompt_tokens: int) -> None:
        """Create the processor for a prompt of `prompt_tokens` tokens."""
        self.presence_penalty = presence_penalty
        self.frequency_penalty = frequency_penalty
        self.prompt_tokens = prompt_tokens

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Subtract the penalties from scores (batch, vocab)."""
        generated = input_ids[:, self.prompt_tokens :]
        if generated.shape[-1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(-1, generated, torch.ones_like(generated, dtype=scores.dtype))
        penalty = counts * self.frequency_penalty + (counts > 0).to(scores.dtype) * self.presence_penalty
        return scores - penalty  # type: ignore[return-value]


class StopWhen:
    """Stopping criterion that ends generation once `event` is set (client gone, or a stop string seen)."""

    def __init__(self, event: threading.Event) -> None:
        """Watch `event`."""
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **_: object) -> torch.BoolTensor:
        """One flag per sequence of the batch."""
        done = self.event.is_set()
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


class StopMatcher:
    """Cuts streamed text at the first stop string, holding back text that may be the start of one.

    `feed` returns what can be shown now; after a match it returns the text before the stop string and
    `stopped` turns true; `flush` returns what was held back once the text has ended without a match.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        """Match these (non-empty) stop strings."""
        self.stops = tuple(stops)
        self.stopped = False
        self._held = ""

    def feed(self, text: str) -> str:
        """Add text; return the part that is certainly before any stop string."""
        if self.stopped:
            return ""
        if not self.stops:
            return text
        buffer = self._held + text
        hold = self._longest_partial(buffer)
        first = self._first_hit(buffer)
        if first is not None and first <= len(buffer) - hold:
            # No longer stop string that starts earlier can still complete: this is the cut.
            self.stopped = True
            self._held = ""
            return buffer[:first]
        self._held = buffer[len(buffer) - hold :]
        return buffer[: len(buffer) - hold]

    def flush(self) -> str:
        """The held-back text, once no more text will come (up to a stop string it holds)."""
        held, self._held = self._held, ""
        if self.stopped:
            return ""
        first = self._first_hit(held)
        return held if first is None else held[:first]

    def _first_hit(self, buffer: str) -> int | None:
        hits = [index for stop in self.stops if (index := buffer.find(stop)) >= 0]
        return min(hits) if hits else None

    def _longest_partial(self, buffer: str) -> int:
        """Length of the longest suffix of `buffer` that is a proper prefix of a stop string."""
        longest = min(len(buffer), max(len(stop) for stop in self.stops) - 1)
        for size in range(longest, 0, -1):
            tail = buffer[-size:]
            if any(stop.startswith(tail) for stop in self.stops):
                return size
        return 0
