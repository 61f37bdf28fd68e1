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


def _stream(aggregator: SentenceAggregator, text: str, cuts: list[int]) -> tuple[list[str], list[str]]:
    """Push `text` cut at `cuts`; return what push released and what flush released."""
    positions = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pushed = [chunk for a, b in zip(positions, positions[1:], strict=False) for chunk in aggregator.push(text[a:b])]
    return pushed, aggregator.flush()


@settings(max_examples=300, deadline=None)
@given(
    text=_TEXT,
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=40),
    min_chars=st.integers(min_value=0, max_value=40),
    words=st.integers(min_value=1, max_value=10),
)
def test_a_short_first_chunk_keeps_every_word_whatever_the_token_split(
    text: str, cuts: list[int], min_chars: int, words: int
) -> None:
    pushed, flushed = _stream(SentenceAggregator(min_chars=min_chars, first_chunk_words=words), text, cuts)
    out = pushed + flushed
    assert " ".join(out) == _collapse(text)
    assert all(chunk and chunk == chunk.strip() for chunk in out)
    # Only the first chunk may be shorter than min_chars; it has at most `words` words, plus one
    # more for each abbreviation the cut moved past.
    assert all(len(chunk) >= min_chars for chunk in pushed[1:])
    if out:
        first = out[0].split()
        assert len(first) <= words + sum(w in ("Dr.", "e.g.") for w in first)
    # The first chunk does not depend on how the text was cut into tokens.
    whole = SentenceAggregator(min_chars=min_chars, first_chunk_words=words)
    assert (whole.push(text) + whole.flush())[:1] == out[:1]


@settings(max_examples=200, deadline=None)
@given(text=_TEXT, max_chars=st.integers(min_value=20, max_value=80), words=st.integers(min_value=1, max_value=10))
def test_a_short_first_chunk_respects_max_chars(text: str, max_chars: int, words: int) -> None:
    aggregator = SentenceAggregator(min_chars=4, max_chars=max_chars, first_chunk_words=words)
    pushed, flushed = _stream(aggregator, text, list(range(len(text))))
    out = pushed + flushed
    assert "".join("".join(out).split()) == "".join(text.split())
    assert all(len(chunk) <= max_chars for chunk in out)


@pytest.mark.parametrize(
    ("text", "first"),
    [
        # a clause boundary once there are 3 words
        ("Well, the answer really is that it depends. More text here.", "Well, the answer really is that"),
        ("The short answer, of course, is yes. More.", "The short answer,"),
        ("Here are three things: apples, pears and plums. More.", "Here are three things:"),
        ("I think \u2014 honestly \u2014 it is fine. More.", "I think \u2014"),
        ("Yes; we can do that easily. More.", "Yes; we can do that easily."),
        # a sentence end counts as a clause end; a sentence of one or two words does not
        ("It is fine. More text follows here.", "It is fine."),
        ("Sure. I can help you with that. More.", "Sure. I can help you with"),
        # forced after six words when no clause ends sooner
        ("The quick brown fox jumps over the lazy dog. More.", "The quick brown fox jumps over"),
        # never inside a number, never right after an abbreviation or an initial
        ("The value 3.14 is roughly pi today. More.", "The value 3.14 is roughly pi"),
        ("We sold 1,000 units, more than expected. More.", "We sold 1,000 units,"),
        ("Then we met Dr. Smith at noon. More.", "Then we met Dr. Smith at"),
        ("Ask them at 5 p.m. Smith said so. More.", "Ask them at 5 p.m. Smith"),
        ("I asked J. Smith about it. More.", "I asked J. Smith about it."),
        ("One two three four five Dr. Smith said. More.", "One two three four five Dr. Smith"),
        ("Ok, e.g. this one works fine today. More.", "Ok, e.g. this one works fine"),
    ],
)
def test_the_first_chunk_is_the_first_clause(text: str, first: str) -> None:
    for cuts in ([], list(range(len(text)))):  # one token, then one character per token
        aggregator = SentenceAggregator(min_chars=24, first_chunk_words=6)
        pushed, flushed = _stream(aggregator, text, cuts)
        out = pushed + flushed
        assert out[0] == first
        assert " ".join(out) == text
        assert all(len(chunk) >= 24 for chunk in out[1:-1])


def test_the_first_chunk_is_released_as_soon_as_its_end_is_known() -> None:
    aggregator = SentenceAggregator(min_chars=24, first_chunk_words=6)
    assert aggregator.push("Great question") == []
    assert aggregator.push(",") == []  # "," might still be "1,000": wait for the space
    assert aggregator.push(" and") == []  # "Great question," is only two words
    assert aggregator.push(" the") == []
    assert aggregator.push(" answer is") == []  # "is" may still grow into "isn't"
    assert aggregator.push(" 3.") == ["Great question, and the answer is"]  # six words
    assert aggregator.push("14 because") == []
    assert aggregator.push(" of") == []
    # Later chunks follow the sentence rules again: a full sentence, then a short one held for merging.
    assert aggregator.push(" the circle. Then the rest. ") == ["3.14 because of the circle."]
    assert aggregator.flush() == ["Then the rest."]


def test_a_short_answer_is_flushed_whole_and_the_first_chunk_resets() -> None:
    aggregator = SentenceAggregator(min_chars=24, first_chunk_words=6)
    assert aggregator.push("Hi there") == []
    assert aggregator.flush() == ["Hi there"]
    assert aggregator.push("The next answer, with its own first clause. ") == [
        "The next answer,",
        "with its own first clause.",
    ]


def test_without_the_option_the_first_sentence_is_like_the_others() -> None:
    aggregator = SentenceAggregator(min_chars=1)
    assert aggregator.push("Well, the answer really is that it depends on things ") == []


def test_first_chunk_words_must_be_positive() -> None:
    with pytest.raises(ValueError, match="first_chunk_words"):
        SentenceAggregator(first_chunk_words=0)
