"""LocalModel: context budget, sampling defaults, finish reasons and the penalties on the real tiny model."""

from __future__ import annotations

import copy
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import GenerationConfig

from comps.core.device import resolve_device
from comps.core.errors import InvalidRequest
from comps.llm.backends.base import GenerationRequest, Message
from comps.llm.backends.generate import LocalModel

HELLO = (Message(role="user", content="Hello, how are you?"),)


def bare_model(config: GenerationConfig, *, context: int = 100, default_max_tokens: int = 10) -> LocalModel:
    """A LocalModel around a stand-in holding only a generation config (for the pure arithmetic)."""
    return LocalModel(
        model=SimpleNamespace(generation_config=config),
        tokenizer=SimpleNamespace(eos_token_id=2),
        device=resolve_device("cpu"),
        context_length=context,
        default_max_tokens=default_max_tokens,
    )


def test_budget_states_both_numbers_or_clamps_the_default() -> None:
    model = bare_model(GenerationConfig(), context=100, default_max_tokens=10)
    assert model.budget(prompt_tokens=40, requested=60) == 60
    assert model.budget(prompt_tokens=95, requested=None) == 5  # the default is clamped to the room left
    with pytest.raises(InvalidRequest, match=r"context is 100 tokens.*prompt has 40 tokens.*61 more \(101 > 100\)"):
        model.budget(prompt_tokens=40, requested=61)
    with pytest.raises(InvalidRequest, match="prompt alone has 100"):
        model.budget(prompt_tokens=100, requested=None)


def test_unset_sampling_takes_the_models_recommendation_when_it_samples() -> None:
    qwen_like = GenerationConfig(do_sample=True, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05)
    sampling = bare_model(qwen_like).sampling(GenerationRequest(messages=HELLO))
    assert (sampling.temperature, sampling.top_p, sampling.top_k, sampling.repetition_penalty) == (0.7, 0.8, 20, 1.05)
    asked = bare_model(qwen_like).sampling(GenerationRequest(messages=HELLO, temperature=0.0, top_k=5))
    assert (asked.temperature, asked.top_k, asked.top_p) == (0.0, 5, 0.8)
    greedy_model = bare_model(GenerationConfig(do_sample=False)).sampling(GenerationRequest(messages=HELLO))
    assert (greedy_model.temperature, greedy_model.top_p, greedy_model.top_k) == (1.0, None, None)


def greedy(model: LocalModel, **fields: object) -> tuple[str, str, int]:
    request = GenerationRequest(messages=HELLO, max_tokens=12, temperature=0.0, **fields)  # type: ignore[arg-type]
    result = model.generate(request, on_text=None, cancel=threading.Event())
    assert result.usage is not None
    return result.text, result.finish_reason, result.usage.completion_tokens


def test_penalties_change_the_greedy_answer(local_model: LocalModel) -> None:
    plain = greedy(local_model)
    assert plain[1:] == ("length", 12)
    assert greedy(local_model, repetition_penalty=2.0)[0] != plain[0]
    assert greedy(local_model, presence_penalty=2.0)[0] != plain[0]
    assert greedy(local_model, frequency_penalty=2.0)[0] != plain[0]
    assert greedy(local_model, repetition_penalty=1.0)[0] == plain[0]


def test_repetition_penalty_matches_transformers_own(local_model: LocalModel) -> None:
    # Ours replaced transformers' (which rounds a tiny penalty to 0): the same greedy tokens for ordinary values.
    prompt = local_model.encode(GenerationRequest(messages=HELLO))
    for penalty in (0.7, 1.3):
        theirs = local_model.model.generate(
            input_ids=torch.tensor([prompt]), max_new_tokens=12, do_sample=False, repetition_penalty=penalty
        )[0, len(prompt) :]
        ours = greedy(local_model, repetition_penalty=penalty)[0]
        assert ours == local_model.tokenizer.decode(theirs, skip_special_tokens=True)


def test_end_of_sequence_finishes_with_stop(local_model: LocalModel) -> None:
    prompt = local_model.encode(GenerationRequest(messages=HELLO))
    request = GenerationRequest(messages=HELLO, max_tokens=3, temperature=0.0)
    first = local_model.model.generate(input_ids=torch.tensor([prompt]), max_new_tokens=2, do_sample=False)[
        0, len(prompt) :
    ].tolist()
    # The same weights, told that the second greedy token ends the sequence.
    clone = copy.copy(local_model.model)
    clone.generation_config = copy.deepcopy(local_model.model.generation_config)
    clone.generation_config.eos_token_id = first[1]
    ending = LocalModel(
        model=clone,
        tokenizer=local_model.tokenizer,
        device=local_model.device,
        context_length=512,
        default_max_tokens=8,
    )
    result = ending.generate(request, on_text=None, cancel=threading.Event())
    assert result.finish_reason == "stop"
    assert result.usage is not None and result.usage.completion_tokens == 2


def test_cancel_before_start_generates_at_most_one_token(local_model: LocalModel) -> None:
    cancel = threading.Event()
    cancel.set()
    result = local_model.generate(
        GenerationRequest(messages=HELLO, max_tokens=50, temperature=0.0), on_text=None, cancel=cancel
    )
    assert result.usage is not None and result.usage.completion_tokens <= 1


def test_a_tokenizer_without_chat_template_is_refused(tiny_llm_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no-template"
    shutil.copytree(tiny_llm_dir, folder)
    (folder / "chat_template.jinja").unlink()
    with pytest.raises(RuntimeError, match="no chat template"):
        LocalModel.load(
            folder,
            device=resolve_device("cpu"),
            dtype="auto",
            trust_remote_code=False,
            max_model_len=None,
            default_max_tokens=8,
        )
