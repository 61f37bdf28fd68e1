"""A loaded causal LM and its tokenizer: chat template, context check, one blocking generation at a time."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, TextStreamer

from comps.core.device import Device, inference_mode
from comps.core.errors import InvalidRequest
from comps.llm.backends.base import FinishReason, Generation, GenerationRequest, TokenUsage
from comps.llm.backends.sampling import OpenAIPenalties, RepetitionPenalty, SeededSampler, StopMatcher, StopWhen

logger = logging.getLogger(__name__)

# Some tokenizers report this sentinel (≈1e30) as model_max_length when they have no limit.
_NO_LIMIT = 10**9


@dataclass(frozen=True)
class Sampling:
    """Effective sampling values after request values and the model's defaults are combined."""

    temperature: float
    top_p: float | None
    top_k: int | None
    repetition_penalty: float | None


class _Streamer(TextStreamer):
    """transformers' word-boundary text streamer, handing finalized text to a callback instead of stdout.

    `TextIteratorStreamer` would need a second thread blocked on its queue; this calls back from the
    generating thread itself.
    """

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._on_text = on_text

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._on_text(text)


class LocalModel:
    """A causal LM with a chat template, loaded once and shared by the worker threads."""

    def __init__(
        self, *, model: Any, tokenizer: Any, device: Device, context_length: int, default_max_tokens: int
    ) -> None:
        """Wrap a loaded model; use `LocalModel.load` to load one from a folder."""
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.context_length = context_length
        self.default_max_tokens = default_max_tokens
        # Encoding may reconfigure the Rust tokenizer (padding/truncation); keep it to one thread at a time.
        self._encode_lock = threading.Lock()
        defaults = model.generation_config
        self._defaults = defaults
        self._eos = defaults.eos_token_id if defaults.eos_token_id is not None else tokenizer.eos_token_id
        self._eos_ids = set(self._eos if isinstance(self._eos, list) else [self._eos]) - {None}

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        device: Device,
        dtype: str,
        trust_remote_code: bool,
        max_model_len: int | None,
        default_max_tokens: int,
    ) -> LocalModel:
        """Load model and tokenizer from a `save_pretrained` folder (blocking)."""
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        if getattr(tokenizer, "chat_template", None) is None:
            raise RuntimeError(f"the tokenizer in {folder} has no chat template; use an instruct/chat model")
        torch_dtype = _dtype(dtype, device)
        loaded: Any = AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
        model = loaded.to(device.torch_device).eval()
        context = max_model_len or _context_length(model.config, tokenizer)
        return cls(
            model=model,
            tokenizer=tokenizer,
            device=device,
            context_length=context,
            default_max_tokens=default_max_tokens,
        )

    def encode(self, request: GenerationRequest) -> list[int]:
        """The prompt's token ids through the chat template, generation prompt appended."""
        from jinja2 import TemplateError

        conversation = [{"role": m.role, "content": m.content} for m in request.messages]
        with self._encode_lock:
            try:
                prompt = self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
            except TemplateError as exc:
                raise InvalidRequest(
                    f"the model's chat template refused these messages: {exc}",
                    param="messages",
                    code="chat_template_error",
                ) from exc
            ids: list[int] = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return ids

    def budget(self, prompt_tokens: int, requested: int | None) -> int:
        """How many tokens to generate; an explicit request beyond the context is a 400 stating both numbers."""
        room = self.context_length - prompt_tokens
        if requested is not None and requested > room:
            raise InvalidRequest(
                f"this model's context is {self.context_length} tokens, but the prompt has {prompt_tokens} tokens "
                f"and max_tokens asks for {requested} more ({prompt_tokens + requested} > {self.context_length})",
                param="max_tokens",
                code="context_length_exceeded",
            )
        if room < 1:
            raise InvalidRequest(
                f"this model's context is {self.context_length} tokens, but the prompt alone has {prompt_tokens}",
                param="messages",
                code="context_length_exceeded",
            )
        return requested if requested is not None else min(self.default_max_tokens, room)

    def sampling(self, request: GenerationRequest) -> Sampling:
        """Request values first; unset ones from the model's generation_config when it samples, else OpenAI's."""
        d = self._defaults
        model_samples = bool(d.do_sample)
        temperature = request.temperature
        if temperature is None:
            temperature = float(d.temperature) if model_samples and d.temperature is not None else 1.0
        return Sampling(
            temperature=temperature,
            top_p=request.top_p if request.top_p is not None else (d.top_p if model_samples else None),
            top_k=request.top_k if request.top_k is not None else (d.top_k if model_samples else None),
            repetition_penalty=request.repetition_penalty
            if request.repetition_penalty is not None
            else d.repetition_penalty,
        )

    def generate(
        self, request: GenerationRequest, *, on_text: Callable[[str], None] | None, cancel: threading.Event
    ) -> Generation:
        """Blocking generation; finalized text goes to `on_text` as it appears. `cancel` stops it early."""
        prompt = self.encode(request)
        max_new = self.budget(len(prompt), request.max_tokens)
        sampling = self.sampling(request)
        matcher = StopMatcher(request.stop)
        halt = threading.Event()  # set by a stop string or by `cancel`
        parts: list[str] = []

        def take(text: str) -> None:
            shown = matcher.feed(text)
            if matcher.stopped:
                halt.set()
            if shown:
                parts.append(shown)
                if on_text is not None:
                    on_text(shown)

        processors: list[Any] = []
        if sampling.repetition_penalty is not None and sampling.repetition_penalty != 1.0:
            processors.append(RepetitionPenalty(penalty=sampling.repetition_penalty))
        if request.presence_penalty or request.frequency_penalty:
            processors.append(
                OpenAIPenalties(
                    presence_penalty=request.presence_penalty or 0.0,
                    frequency_penalty=request.frequency_penalty or 0.0,
                    prompt_tokens=len(prompt),
                )
            )
        if sampling.temperature > 0:
            seed = request.seed if request.seed is not None else secrets.randbits(62)
            processors.append(
                SeededSampler(temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p, seed=seed)
            )
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max_new,
            do_sample=False,
            num_beams=1,
            eos_token_id=self._eos,
            pad_token_id=self._defaults.pad_token_id
            if self._defaults.pad_token_id is not None
            else self.tokenizer.pad_token_id,
            # Ours is in `processors` (transformers' rounds a tiny penalty to 0); None would take the model's.
            repetition_penalty=1.0,
        )
        stopping = [StopWhen(halt), StopWhen(cancel)]
        inputs = torch.tensor([prompt], device=self.device.torch_device)
        with inference_mode():
            output = self.model.generate(
                input_ids=inputs,
                attention_mask=torch.ones_like(inputs),
                generation_config=config,
                logits_processor=processors,
                stopping_criteria=stopping,
                streamer=_Streamer(self.tokenizer, take),
            )
        tail = matcher.flush()
        if tail:
            parts.append(tail)
            if on_text is not None:
                on_text(tail)
        new_tokens = output[0, len(prompt) :].tolist()
        finish: FinishReason = "stop"
        if not matcher.stopped and not (new_tokens and new_tokens[-1] in self._eos_ids) and len(new_tokens) >= max_new:
            finish = "length"
        return Generation(
            text="".join(parts),
            finish_reason=finish,
            usage=TokenUsage(prompt_tokens=len(prompt), completion_tokens=len(new_tokens)),
        )


def _dtype(name: str, device: Device) -> torch.dtype:
    if name == "auto":
        return torch.float32 if device.kind == "cpu" else torch.bfloat16
    dtype: torch.dtype = getattr(torch, name)
    return dtype


def _context_length(config: Any, tokenizer: Any) -> int:
    """The context window: the model config's positions, else the tokenizer's limit, else 2048."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _NO_LIMIT:
        return limit
    return 2048
