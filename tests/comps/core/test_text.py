"""Text splitting never drops text, respects the limit, and streams sentences without cutting abbreviations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comps.core.text import SentenceAggregator, sentence_boundaries, split_sentences, split_text

# Words, punctuation and every kind of whitespace, in any mix (plus arbitrary unicode text).
_ATOMS = st.sampled_from(
    [
        "Hello",
        "world",
        "Dr.",
        "e.g.",
        "3.14",
        "a",
        "supercalifragilistic",
        ".",
        "!",
        "?",
        "...",
        ",",
        ";",
        ":",
        " - ",
        " \u2014 ",
        "\u201cquoted.\u201d",
        "(x)",
        " ",
        "  ",
        "\n",
        "\n\n",
        "\t",
        "1.",
        "\u2022",
        "\u00e9t\u00e9",
    ]
)
_TEXT = st.one_of(st.lists(_ATOMS, max_size=60).map("".join), st.text(max_size=300))


def _collapse(text: str) -> str:
    return " ".join(text.split())


@settings(max_examples=400, deadline=None)
@given(text=_TEXT, max_chars=st.integers(min_value=1, max_value=120))
def test_chunks_keep_every_word_in_order_and_fit_the_limit(text: str, max_chars: int) -> None:
    chunks = split_text(text, max_chars=max_chars)
    assert all(0 < len(chunk) <= max_chars for chunk in chunks)
    assert all(chunk == chunk.strip() for chunk in chunks)
    # Every non-space character survives, in order.
    assert "".join("".join(chunks).split()) == "".join(text.split())
    if all(len(word) <= max_chars for word in text.split()):
        # No word was cut: the chunks are exactly the input's words, in order, re-joined by single spaces.
        assert " ".join(chunks) == _collapse(text)
        assert [w for chunk in chunks for w in chunk.split()] == text.split()


@settings(max_examples=300, deadline=None)
@given(
    text=_TEXT,
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=40),
    min_chars=st.integers(min_value=0, max_value=40),
)
def test_aggregator_streams_every_word_whatever_the_token_split(text: str, cuts: list[int], min_chars: int) -> None:
    positions = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    aggregator = SentenceAggregator(min_chars=min_chars)
    out: list[str] = []
    for start, end in zip(positions, positions[1:], strict=False):
        out.extend(aggregator.push(text[start:end]))
    streamed = list(out)
    out.extend(aggregator.flush())
    assert " ".join(out) == _collapse(text)
    assert all(sentence and sentence == sentence.strip() for sentence in out)
    assert all(len(sentence) >= min_chars for sentence in streamed)


@settings(max_examples=200, deadline=None)
@given(text=_TEXT, max_chars=st.integers(min_value=20, max_value=80))
def test_aggregator_with_a_limit_releases_long_runs_and_keeps_every_character(text: str, max_chars: int) -> None:
    aggregator = SentenceAggregator(min_chars=4, max_chars=max_chars)
    out = [sentence for char in text for sentence in aggregator.push(char)]
    out.extend(aggregator.flush())
    assert "".join("".join(out).split()) == "".join(text.split())
    assert all(len(chunk) <= max_chars for chunk in out)


def test_text_after_the_last_punctuation_is_kept() -> None:
    # OPEA's splitter turns this into just "Hello.".
    assert split_text("Hello. How are you", max_chars=100) == ["Hello.", "How are you"]


def test_sentences_are_not_cut_at_abbreviations_initials_decimals_or_list_numbers() -> None:
    text = "Dr. Smith paid $3.14 for e.g. apples at 5 p.m. today. J. R. R. Tolkien wrote it!\n1. First item\n2. Second"
    assert split_sentences(text) == [
        "Dr. Smith paid $3.14 for e.g. apples at 5 p.m. today.",
        "J. R. R. Tolkien wrote it!",
        "1. First item",
        "2. Second",
    ]


def test_closing_quotes_stay_with_their_sentence_and_paragraphs_split() -> None:
    assert split_sentences('She said "stop." Then left\n\nNew paragraph') == [
        'She said "stop."',
        "Then left",
        "New paragraph",
    ]


def test_a_long_sentence_is_split_at_clauses_then_words_then_characters() -> None:
    text = "First clause here, second clause there; then a verylongwordthatcannotfit at all"
    assert split_text(text, max_chars=20) == [
        "First clause here,",
        "second clause there;",
        "then a",
        "verylongwordthatcann",
        "otfit",
        "at all",
    ]


def test_a_boundary_waits_for_the_whitespace_after_it() -> None:
    assert sentence_boundaries("It costs 3.") == []
    assert sentence_boundaries("It costs 3.14 now. Ok") == [len("It costs 3.14 now.")]


def test_aggregator_emits_a_sentence_once_the_next_token_confirms_it() -> None:
    aggregator = SentenceAggregator(min_chars=1)
    assert aggregator.push("The value is 3.") == []
    assert aggregator.push("14 exactly.") == []
    assert aggregator.push(" Dr.") == ["The value is 3.14 exactly."]
    assert aggregator.push(" Who") == []
    assert aggregator.push(" agrees? Yes") == ["Dr. Who agrees?"]
    assert aggregator.flush() == ["Yes"]
    assert aggregator.flush() == []


def test_aggregator_merges_sentences_shorter_than_min_chars() -> None:
    aggregator = SentenceAggregator(min_chars=12)
    assert aggregator.push("Sure. I can help. ") == ["Sure. I can help."]
    assert aggregator.push("Ok. ") == []
    assert aggregator.flush() == ["Ok."]


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        split_text("x", max_chars=0)
    with pytest.raises(ValueError, match="max_chars"):
        SentenceAggregator(min_chars=10, max_chars=5)
