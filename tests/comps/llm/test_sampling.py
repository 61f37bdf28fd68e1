"""Seeded sampling, OpenAI penalties, the cancel criterion and stop-string matching."""

from __future__ import annotations

import threading

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from comps.llm.backends.sampling import OpenAIPenalties, RepetitionPenalty, SeededSampler, StopMatcher, StopWhen


def drawn(sampler: SeededSampler, scores: torch.Tensor) -> int:
    out = sampler(torch.zeros((1, 1), dtype=torch.long), scores)  # type: ignore[arg-type]
    assert int(torch.isfinite(out).sum()) == 1  # exactly one token left for greedy to pick
    return int(out.argmax())


def test_same_seed_same_draws_other_seed_other_draws() -> None:
    scores = torch.zeros((1, 50))
    a = SeededSampler(temperature=1.0, top_k=None, top_p=None, seed=11)
    b = SeededSampler(temperature=1.0, top_k=None, top_p=None, seed=11)
    c = SeededSampler(temperature=1.0, top_k=None, top_p=None, seed=12)
    seq_a = [drawn(a, scores) for _ in range(20)]
    assert seq_a == [drawn(b, scores) for _ in range(20)]
    assert seq_a != [drawn(c, scores) for _ in range(20)]


def test_seeded_draws_ignore_the_global_rng() -> None:
    scores = torch.zeros((1, 50))
    a = SeededSampler(temperature=1.0, top_k=None, top_p=None, seed=5)
    first = [drawn(a, scores) for _ in range(10)]
    torch.manual_seed(999)
    torch.rand(100)
    b = SeededSampler(temperature=1.0, top_k=None, top_p=None, seed=5)
    assert [drawn(b, scores) for _ in range(10)] == first


def test_top_k_keeps_only_the_k_best() -> None:
    scores = torch.tensor([[0.0, 5.0, 4.0, 1.0, 3.0]])
    sampler = SeededSampler(temperature=2.0, top_k=2, top_p=None, seed=0)
    assert {drawn(sampler, scores) for _ in range(200)} == {1, 2}


def test_top_p_keeps_the_smallest_set_reaching_the_mass() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    sampler = SeededSampler(temperature=1.0, top_k=None, top_p=0.7, seed=0)
    # 0.5 alone is under 0.7; 0.5 + 0.3 reaches it: tokens 0 and 1 only.
    assert {drawn(sampler, probs.log()) for _ in range(300)} == {0, 1}
    tiny = SeededSampler(temperature=1.0, top_k=None, top_p=0.01, seed=0)
    assert {drawn(tiny, probs.log()) for _ in range(50)} == {0}


def test_low_temperature_concentrates_on_the_best_token() -> None:
    scores = torch.tensor([[1.0, 2.0, 1.5]])
    sampler = SeededSampler(temperature=0.01, top_k=None, top_p=None, seed=0)
    assert {drawn(sampler, scores) for _ in range(50)} == {1}


def test_temperature_zero_is_refused_by_the_sampler() -> None:
    with pytest.raises(ValueError, match="greedy"):
        SeededSampler(temperature=0.0, top_k=None, top_p=None, seed=0)


def test_openai_penalties_count_generated_tokens_only() -> None:
    # Prompt [3, 3], then generated [1, 1, 2].
    ids = torch.tensor([[3, 3, 1, 1, 2]])
    scores = torch.zeros((1, 5))
    penalties = OpenAIPenalties(presence_penalty=0.5, frequency_penalty=0.25, prompt_tokens=2)
    out = penalties(ids, scores)  # type: ignore[arg-type]
    assert out.tolist() == [[0.0, -(0.5 + 2 * 0.25), -(0.5 + 0.25), 0.0, 0.0]]
    nothing_yet = penalties(ids[:, :2], scores)  # type: ignore[arg-type]
    assert torch.equal(nothing_yet, scores)


def test_stop_when_follows_the_event() -> None:
    event = threading.Event()
    criterion = StopWhen(event)
    ids = torch.zeros((2, 3), dtype=torch.long)
    assert criterion(ids, torch.zeros((2, 4))).tolist() == [False, False]  # type: ignore[arg-type]
    event.set()
    assert criterion(ids, torch.zeros((2, 4))).tolist() == [True, True]  # type: ignore[arg-type]


def test_stop_matcher_cuts_across_pieces() -> None:
    matcher = StopMatcher(["END", "\n\n"])
    shown = [matcher.feed(piece) for piece in ["Hello E", "N", "dless", " world EN", "D tail"]]
    assert "".join(shown) == "Hello ENdless world "
    assert matcher.stopped
    assert matcher.feed("more") == "" and matcher.flush() == ""


def test_stop_matcher_flushes_held_text_when_no_stop_comes() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("go ST") == "go "
    assert matcher.flush() == "ST"
    assert not matcher.stopped


def test_stop_matcher_picks_the_earliest_stop() -> None:
    matcher = StopMatcher(["world", "lo"])
    assert matcher.feed("hello world") == "hel"


@given(
    text=st.text(alphabet="abc ", max_size=40),
    stops=st.lists(st.text(alphabet="abc", min_size=1, max_size=3), min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_stop_matcher_equals_cutting_the_whole_text(text: str, stops: list[str], cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    matcher = StopMatcher(stops)
    shown = "".join(matcher.feed(p) for p in pieces) + matcher.flush()
    hits = [i for s in stops if (i := text.find(s)) >= 0]
    assert shown == (text[: min(hits)] if hits else text)
    assert matcher.stopped == bool(hits)


def test_the_smallest_top_p_keeps_the_best_token() -> None:
    # 5e-324 rounds to 0 in float32, where every token's preceding mass (0 for the best) reached it: all were dropped.
    scores = torch.tensor([[1.0, 3.0, 2.0]])
    sampler = SeededSampler(temperature=1.0, top_k=None, top_p=5e-324, seed=0)
    assert {drawn(sampler, scores) for _ in range(20)} == {1}


def test_the_smallest_temperature_is_greedy() -> None:
    # Dividing float32 logits by 5e-324 (0 in float32) made inf - inf = NaN probabilities.
    scores = torch.tensor([[1.0, 3.0, 2.0, -1.0]])
    for top_k, top_p in [(None, None), (1, None), (2, 0.5)]:
        sampler = SeededSampler(temperature=5e-324, top_k=top_k, top_p=top_p, seed=0)
        assert {drawn(sampler, scores) for _ in range(20)} == {1}


def test_repetition_penalty_is_transformers_one() -> None:
    from transformers import RepetitionPenaltyLogitsProcessor

    ids = torch.tensor([[0, 2, 2, 4]])
    scores = torch.tensor([[1.5, -0.5, -2.0, 3.0, 0.0, 0.25]])
    for penalty in (0.5, 1.2, 2.0):
        ours = RepetitionPenalty(penalty=penalty)(ids, scores.clone())  # type: ignore[arg-type]
        theirs = RepetitionPenaltyLogitsProcessor(penalty)(ids, scores.clone())  # type: ignore[arg-type]
        assert torch.equal(ours, theirs)


def test_the_smallest_repetition_penalty_stays_finite_and_rewards_repeats() -> None:
    # transformers' processor rounds 5e-324 to 0 in float32: 1.5 / 0 = inf, 0 / 0 = NaN.
    ids = torch.tensor([[0, 1, 2, 4]])
    scores = torch.tensor([[1.5, 9.0, -2.0, 3.0, 0.0]])
    out = RepetitionPenalty(penalty=5e-324)(ids, scores)  # type: ignore[arg-type]
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    limits = torch.finfo(torch.float32)
    assert out[0, 0] == torch.tensor(1.5) / limits.tiny  # divided by the smallest normal float32 instead
    assert out[0, 1] == limits.max  # 9 / tiny is beyond float32: stops at its largest value
    assert -1e-37 < out[0, 2] < 0 and out[0, 3] == 3.0 and out[0, 4] == 0.0  # -2 * tiny; not seen; 0 stays 0
    sampler = SeededSampler(temperature=1.0, top_k=None, top_p=None, seed=0)
    assert {drawn(sampler, out) for _ in range(20)} == {1}  # type: ignore[arg-type]


def test_repetition_penalty_must_be_positive() -> None:
    with pytest.raises(ValueError, match="> 0"):
        RepetitionPenalty(penalty=0.0)
