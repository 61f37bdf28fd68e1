"""Lossless text splitting: sentences, then clauses, then words, then characters; and a streaming aggregator.

Pure Python (no model imports), shared by the TTS service (chunks short enough to synthesize) and
the orchestrator (LLM tokens cut into sentences for the LLM→TTS stream).
Unlike OPEA's splitter, no text is ever dropped: the chunks joined with single spaces give back
the input with its whitespace collapsed (a word longer than the limit is the only thing cut, into
character pieces that join back without a space).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

# A sentence ends with a run of terminal marks, optional closing quotes/brackets, then whitespace.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\)\]\u201d\u2019\u00bb]*(?=\s)")
# A blank line (paragraph break) or a new list item also ends a sentence (LLM lists often lack periods).
_LINE_BREAK = re.compile(r"\n[ \t\r\f\v]*\n|\n(?=[ \t]*(?:[-*\u2022]|\d+[.)])\s)")
# Clause boundaries: the whitespace after , ; : or around a dash.
_CLAUSE_GAP = re.compile(r"(?<=[,;:])\s+|\s+(?=[\u2014\u2013-]\s)|(?<=\s[\u2014\u2013-])\s+")
# The word just before a period, to recognise abbreviations ("Dr.", "e.g.") and initials ("J.").
_LAST_WORD = re.compile(r"([\w.]+)$")

# Common English abbreviations written with a final period that rarely end a sentence ("no." is left
# out: "The answer is no." ends one). A real sentence ending in one of these ("... at 5 p.m.") joins
# the next sentence; that costs a longer chunk, never lost text.
ABBREVIATIONS = frozenset(
    {
        *("mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "approx", "dept", "fig"),
        *("e.g", "i.e", "a.m", "p.m", "u.s", "u.k", "inc", "ltd", "corp"),
        *("jan", "feb", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"),
    }
)


def _is_abbreviation(text: str, period: int, start: int) -> bool:
    """Whether the lone '.' at `period` closes an abbreviation, an initial or a list number."""
    match = _LAST_WORD.search(text, start, period)
    if match is None:
        return False
    word = match.group(1).lower()
    if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return True
    # "1." opening a sentence is a numbered-list marker, not a sentence of its own.
    return word.isdigit() and not text[start : match.start()].strip()


def sentence_boundaries(text: str) -> list[int]:
    """Offsets where a sentence ends (just after its punctuation), only where whitespace follows.

    A boundary needs the whitespace after it, so "3.14" is never split and a streaming caller
    waits for the next token before deciding.
    """
    breaks = [m.start() for m in _LINE_BREAK.finditer(text)]
    ends = list(breaks)
    start = 0
    for match in _SENTENCE_END.finditer(text):
        # The current sentence starts after the last sentence end or line break before this mark.
        before = bisect.bisect_right(breaks, match.start())
        if before:
            start = max(start, breaks[before - 1])
        marks = match.group(0).rstrip("\"')]\u201d\u2019\u00bb")
        if marks == "." and _is_abbreviation(text, match.start(), start):
            continue
        ends.append(match.end())
        start = match.end()
    return sorted(set(ends))


def split_sentences(text: str) -> list[str]:
    """Split at sentence boundaries; each sentence has its whitespace collapsed. Nothing is dropped."""
    pieces: list[str] = []
    previous = 0
    for end in [*sentence_boundaries(text), len(text)]:
        piece = " ".join(text[previous:end].split())
        if piece:
            pieces.append(piece)
        previous = end
    return pieces


def _clauses(text: str) -> list[str]:
    return [part for part in _CLAUSE_GAP.split(text) if part]


def _words(text: str) -> list[str]:
    return text.split(" ")


_SPLITTERS: tuple[Callable[[str], list[str]], ...] = (_clauses, _words)


def _fit(piece: str, max_chars: int, level: int) -> list[str]:
    """Split `piece` (whitespace already collapsed) into parts of at most `max_chars`, packing greedily."""
    if len(piece) <= max_chars:
        return [piece]
    if level == len(_SPLITTERS):
        # A single word longer than the limit: cut by characters, the last resort.
        return [piece[i : i + max_chars] for i in range(0, len(piece), max_chars)]
    out: list[str] = []
    current = ""
    for part in _SPLITTERS[level](piece):
        if len(part) > max_chars:
            if current:
                out.append(current)
                current = ""
            out.extend(_fit(part, max_chars, level + 1))
        elif not current:
            current = part
        elif len(current) + 1 + len(part) <= max_chars:
            current = f"{current} {part}"
        else:
            out.append(current)
            current = part
    if current:
        out.append(current)
    return out


def split_text(text: str, *, max_chars: int) -> list[str]:
    """Split text into chunks of at most `max_chars` characters, one sentence per chunk where it fits.

    A sentence over the limit is split at clause boundaries (, ; : dashes), then at spaces, and a
    word over the limit by characters. Chunks are stripped, non-empty, and joined by single spaces
    give back the input with collapsed whitespace.

    Raises:
        ValueError: `max_chars` is below 1.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    chunks: list[str] = []
    for sentence in split_sentences(text):
        chunks.extend(_fit(sentence, max_chars, 0))
    return chunks


class SentenceAggregator:
    """Turns a stream of LLM tokens into complete sentences as soon as each one is known to be complete.

    A sentence is emitted once the whitespace after its final punctuation has arrived, so "3.14",
    "Dr. Smith" and "e.g. this" are not cut. Sentences shorter than `min_chars` are merged with
    the next one (a lone "Sure." would make a tiny TTS/animation segment). With `max_chars`, a
    run of text without any sentence end is released in clause/word chunks once it exceeds it.
    With `first_chunk_words`, the first chunk is only the first clause, so the first audio can start
    after a few tokens (see `_first_chunk_end`); every later chunk follows the sentence rules.
    """

    def __init__(
        self, min_chars: int = 16, *, max_chars: int | None = None, first_chunk_words: int | None = None
    ) -> None:
        """Create an empty aggregator.

        Args:
            min_chars: the shortest sentence emitted on its own (except by `flush`).
            max_chars: the longest piece held back while waiting for a sentence end; None waits.
            first_chunk_words: release the first clause on its own, cut after at most this many words
                (`FIRST_CHUNK_WORDS` is a good value); None treats the first sentence like the others.
        """
        if max_chars is not None and max_chars < max(1, min_chars):
            raise ValueError(f"max_chars ({max_chars}) must be at least min_chars ({min_chars}) and 1")
        if first_chunk_words is not None and first_chunk_words < 1:
            raise ValueError(f"first_chunk_words must be at least 1, got {first_chunk_words}")
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.first_chunk_words = first_chunk_words
        self._buffer = ""
        self._first_pending = first_chunk_words is not None

    def push(self, token_text: str) -> list[str]:
        """Add the next piece of text; return the sentences completed by it (often none)."""
        self._buffer += token_text
        out = self._release_first()
        if self._first_pending:
            return out
        ends = sentence_boundaries(self._buffer)
        complete = split_sentences(self._buffer[: ends[-1]]) if ends else []
        rest = self._buffer[ends[-1] :] if ends else self._buffer
        full, pending = _merge_short(complete, self.min_chars)
        out.extend(full)
        if self.max_chars is not None and len(pending) + len(rest) > self.max_chars:
            pieces = split_text(f"{pending} {rest}", max_chars=self.max_chars)
            # The last piece may still grow: keep it, with the trailing space if the text ended on one.
            out.extend(pieces[:-1])
            trailing = " " if rest[-1:].isspace() else ""
            pending, rest = "", (pieces[-1] + trailing if pieces else "")
        self._buffer = f"{pending} {rest}" if pending else rest
        return out

    def flush(self) -> list[str]:
        """End of stream: return whatever is left, split into sentences, and reset."""
        self._buffer += " "  # the end of the stream completes the last word
        first = self._release_first()
        rest, self._buffer = self._buffer, ""
        self._first_pending = self.first_chunk_words is not None
        out, pending = _merge_short(split_sentences(rest), self.min_chars)
        if pending:
            out.append(pending)
        if self.max_chars is not None:
            out = [chunk for sentence in out for chunk in _fit(sentence, self.max_chars, 0)]
        return first + out

    def _release_first(self) -> list[str]:
        """Cut the first chunk off the buffer once its end is known; [] while it is still growing."""
        if not self._first_pending or self.first_chunk_words is None:
            return []
        end = _first_chunk_end(self._buffer, max_words=self.first_chunk_words)
        if end is None:
            if self.max_chars is None or len(self._buffer) <= self.max_chars:
                return []
            self._first_pending = False  # no word boundary within max_chars: the usual rules cut it
            return []
        self._first_pending = False
        first, self._buffer = " ".join(self._buffer[:end].split()), self._buffer[end:].lstrip()
        return _fit(first, self.max_chars, 0) if self.max_chars is not None else [first]


# The first chunk: a clause of at least 3 words (a lone "Sure," or "Well," is too short to be worth
# a TTS call), or 6 words when no clause ends sooner: about 8-10 LLM tokens, so the first audio
# starts after a few tokens instead of a whole sentence.
FIRST_CLAUSE_MIN_WORDS = 3
FIRST_CHUNK_WORDS = 6
# Where a first clause may end: after , ; : or after a spaced dash; sentence ends come from sentence_boundaries.
_CLAUSE_END = re.compile(r"(?<=[,;:])\s|(?<=\s[\u2014\u2013-])\s")
_COMPLETE_WORD = re.compile(r"\S+(?=\s)")


def _first_chunk_end(text: str, *, max_words: int = FIRST_CHUNK_WORDS) -> int | None:
    """Offset where the first chunk of `text` ends, or None while that is not yet known.

    The first clause or sentence end after at least `FIRST_CLAUSE_MIN_WORDS` words (fewer if
    `max_words` is smaller), else the end of the `max_words`-th word. Only boundaries followed by
    whitespace count, so a streaming caller never cuts "3.14", "1,000" or a word still arriving;
    a cut after an abbreviation or initial ("Dr.", "J.") moves to the next word.
    """
    words = list(_COMPLETE_WORD.finditer(text))
    word_ends = [word.end() for word in words]
    least = min(FIRST_CLAUSE_MIN_WORDS, max_words)
    ends = [*sentence_boundaries(text), *(match.start() for match in _CLAUSE_END.finditer(text))]
    cuts = [end for end in ends if bisect.bisect_right(word_ends, end) >= least]
    for word in words[max_words - 1 :]:
        last = word.group().lower()
        if not (last.endswith(".") and (last[:-1] in ABBREVIATIONS or (len(last) == 2 and last[0].isalpha()))):
            cuts.append(word.end())
            break
    return min(cuts, default=None)


def _merge_short(sentences: list[str], min_chars: int) -> tuple[list[str], str]:
    """Join each sentence shorter than `min_chars` to the next; return the full ones and the short remainder."""
    out: list[str] = []
    pending = ""
    for sentence in sentences:
        pending = f"{pending} {sentence}" if pending else sentence
        if len(pending) >= min_chars:
            out.append(pending)
            pending = ""
    return out, pending
