"""What the avatar says aloud: an LLM answer's words without its markdown, code, links or emoji."""

from __future__ import annotations

import re

# A run of three backticks or tildes opens or closes a fenced code block, which is never read aloud.
# Chunks from the sentence aggregator have their newlines collapsed, so a fence counts anywhere.
_FENCE = re.compile(r"`{3,}|~{3,}")
# Pictographs: U+1F000-1FAFF (emoticons, flags, skin tones, symbols and pictographs), misc symbols,
# dingbats, stars/arrows U+2B00-2BFF, geometric shapes (▪ ► ◦), and the emoji among technical symbols.
_PICTO = (
    "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u25a0-\u25ff\u231a\u231b\u2328\u23cf\u23e9-\u23f3\u23f8-\u23fa"
)
# A keycap ("1️⃣") or a pictograph with what may follow it: ZWJ, more pictographs, variation selectors, tags.
_EMOJI = re.compile(rf"[ \t]*(?:[0-9#*]\ufe0f?\u20e3|[{_PICTO}][{_PICTO}\u200d\ufe0e\ufe0f\U000e0020-\U000e007f]*)")
_BULLETS = "-*+\u2022\u2023\u2219"  # - * + • ‣ ∙ (▪ ► ◦ are pictographs and simply dropped)
_LINE_START = re.compile(
    r"[ \t]*(?P<quote>(?:>[ \t]*)*)"
    rf"(?:(?P<heading>#{{1,6}})(?:[ \t]+|$)|(?P<number>\d{{1,3}})[.)][ \t]+|(?P<bullet>[{_BULLETS}])[ \t]+)?"
)
_RULE = re.compile(r"(?<!\S)([-*_=])(?:[ \t]*\1){2,}(?!\S)")  # "---", "***", "___", a setext "===" underline
_TABLE_SEPARATOR = re.compile(r"\|?(?:[ \t]*:?-{3,}:?[ \t]*\|)+(?:[ \t]*:?-{3,}:?(?!\S))?")
_ROW_BREAK = re.compile(r"\|[ \t]*\|")  # the end of one row and the start of the next, joined on one line
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_TAG = re.compile(r"</?([a-z][a-z0-9]*)(?:\s+[\w:-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'<>]+))*\s*/?>", re.I)
_SPACED_TAGS = frozenset({"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6"})
_ITEM_AFTER = frozenset(".!?:\u2026")  # marks after which " - X" starts an item in prose
_TERMINATED = re.compile(r"[.!?\u2026:;,][\"'\)\]\u201d\u2019\u00bb]*$")
# (pattern, replacement) applied in order to prose outside inline code. A "*" that is not emphasis is
# a "times" between spaced operands ("2 * 3", "price * qty"), or unspaced between numbers, brackets or
# one-letter variables ("2*3", "(a)*(b)", "x*y"); "2**10" is a power. Any other "*" is dropped.
_INLINE: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"<!--.*?-->", ""),
        (r"!?\[([^\]\n]*)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"]*\")?\)", r"\1"),  # [text](url), images
        (r"\[([^\]\n]+)\]\[[^\]\n]*\]", r"\1"),  # [text][ref]
        (r"[ \t]*<?\b(?:https?://|www\.)[^\s<>]*[^\s<>.,;:!?'\")\]]>?", ""),  # bare URLs and <autolinks>
        (r"[\ufe0e\ufe0f]", ""),  # variation selectors left after text symbols ("™️")
        (r"(?<=\d)[ \t]*\*\*[ \t]*(?=\d)", " to the power of "),
        (r"\*\*(?=\S)(.+?)(?<=\S)\*\*", r"\1"),
        (r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)", r"\1"),
        (r"~~(?=\S)(.+?)(?<=\S)~~", r"\1"),
        (r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])", r"\1"),
        (r"(?<!\w)_(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)", r"\1"),  # _x_ only at word boundaries: snake_case stays
        (r"(?<=[\w)])[ \t]+\*[ \t]+(?=[\w(])|(?<=[\d)])\*(?=[\d(])|(?<=\b[a-zA-Z])\*(?=[a-zA-Z]\b)", " times "),
        (r"[ \t]*(?:\*+|~~|`+|[\u2022\u2023\u2219])(?!\S)|\*+|~~|`+", ""),  # stray markers, a lone bullet
    )
)


def _prose(text: str) -> str:
    """Rewrite one piece of a line for speech; inline code keeps its text and loses its backticks."""
    pieces = _CODE_SPAN.split(text)
    for index in range(0, len(pieces), 3):  # split() yields prose, backticks, code, prose, ...
        prose = _EMOJI.sub("", pieces[index])
        prose = _TAG.sub(lambda m: " " if m.group(1).lower() in _SPACED_TAGS else "", prose)
        for pattern, replacement in _INLINE:
            prose = pattern.sub(replacement, prose)
        pieces[index] = prose
    return "".join(piece for index, piece in enumerate(pieces) if index % 3 != 1)


def _terminate(text: str) -> str:
    """End a list item, heading or table row with a period when it has no punctuation, so TTS pauses."""
    text = text.strip()
    return text + "." if text and not _TERMINATED.search(text) else text


def _items(body: str, bullet: str | None, number: str | None) -> list[str]:
    """Split a list line the aggregator joined ("- a - b", "1. a 2. b", "Fruits: - a") into its items.

    A later marker starts an item when no lowercase letter follows it (and it is not "2 - 3"), and
    it is the next number, repeats the line's own bullet, or comes after a sentence end or colon.
    """
    marker = r"(?P<number>\d{1,3})[.)]" if number else rf"(?P<bullet>[{_BULLETS}])"
    items, start, expected = [], 0, int(number or 0) + 1
    for match in re.finditer(rf"(?P<before>\S?)[ \t]+{marker}[ \t]+(?=(?P<next>\S))", body):
        before, after = match.group("before"), match.group("next")
        if after.islower() or (before[-1:].isdigit() and after.isdigit()):
            continue
        if number:
            if int(match.group("number")) != expected:
                continue
            expected += 1
        elif match.group("bullet") != bullet and before not in _ITEM_AFTER:
            continue
        else:
            bullet = match.group("bullet")  # "Fruits: * Apples * Pears": "*" is now this line's bullet
        items.append(body[start : match.end("before")])
        start = match.end()
    return [*items, body[start:]]


def _speak_line(line: str) -> list[str]:
    """One line (or one whitespace-collapsed chunk) -> its spoken pieces."""
    line = _RULE.sub("", " ".join(line.split()))  # single spaces keep the [ \t]* patterns linear
    start = _LINE_START.match(line)
    assert start is not None  # every part of the pattern is optional
    body = line[start.end() :]
    if start.group("quote"):  # a quote the aggregator joined into one line: "> a > b"
        body = re.sub(r"(?<=\s)>[ \t]+", "", body)
    if start.group("heading"):
        return [_terminate(_prose(re.sub(r"[ \t]+#+[ \t]*$", "", body)))]
    if "|" in body:
        rows = _ROW_BREAK.split(_TABLE_SEPARATOR.sub(" ", body))
        cells = [re.sub(r"[ \t]*\|[ \t]*", ", ", row.strip().strip("|").strip()) for row in rows]
        return [_terminate(_prose(re.sub(r"(?<=[.!?:;,]), ", " ", row))) for row in cells]
    bullet, number = start.group("bullet"), start.group("number")
    spoken = [_prose(re.sub(r"^[ \t]*\[[ xX]\][ \t]+", "", item)) for item in _items(body, bullet, number)]
    if not (bullet or number):  # prose, perhaps followed by items: "Fruits: - Apples - Pears"
        return [spoken[0], *map(_terminate, spoken[1:])]
    return [_terminate(item) for item in spoken]


class SpeechNormalizer:
    """`speakable` for a stream of chunks: remembers across chunks whether a fenced code block is open.

    Use one per answer, fed the aggregator's chunks in order. A chunk has lost its newlines, so line
    markup (heading, quote, list marker) is known only at the chunk's start, and merged list items
    ("- a - b", "1. a 2. b") are split again; a "+" item or heading sharing a chunk with the text
    after it, or a blank line lost in a merge, costs a pause, never words.
    """

    def __init__(self) -> None:
        """Start outside any code block."""
        self.in_code = False

    def push(self, chunk: str) -> str:
        """The words of the next chunk to speak; '' when nothing is left to say (skip the TTS call)."""
        spoken: list[str] = []
        for index, part in enumerate(_FENCE.split(chunk)):
            if index:
                self.in_code = not self.in_code
            if not self.in_code:
                spoken.append(part)
        pieces = [piece for line in "\n".join(spoken).splitlines() for piece in _speak_line(line)]
        text = _SPACE_BEFORE_MARK.sub(r"\1", " ".join(" ".join(pieces).split()))
        text = _LEADING_MARKS.sub("", text)  # a chunk cut just before a sentence's final mark
        return text if any(char.isalnum() for char in text) else ""


# A space left before a closing mark where something (an emoji, a link) was taken out: "France ." -> "France."
_SPACE_BEFORE_MARK = re.compile(r"(?<=\w) +([.,!?;:])(?=\s|$)")
_LEADING_MARKS = re.compile(r"^[.,!?;:]+(?:\s+|$)")


def speakable(text: str) -> str:
    """The words to say for `text` (markdown, code, links, HTML and emoji removed); '' if none."""
    return SpeechNormalizer().push(text)
