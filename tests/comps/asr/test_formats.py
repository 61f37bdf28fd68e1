from __future__ import annotations

import json

from comps.asr.backends.base import Segment, Transcript
from comps.asr.formats import render, timestamp, to_srt, to_verbose, to_vtt

SEGMENTS = [Segment(0.0, 2.5, " Hello there."), Segment(2.5, 3661.0456, " General Kenobi.", tokens=(1, 2))]
TRANSCRIPT = Transcript(text="Hello there. General Kenobi.", language="en", duration_s=3661.2, segments=SEGMENTS)


def test_timestamp() -> None:
    assert timestamp(0, decimal_marker=",") == "00:00:00,000"
    assert timestamp(3661.0456, decimal_marker=".") == "01:01:01.046"
    assert timestamp(-0.2, decimal_marker=".") == "00:00:00.000"


def test_srt() -> None:
    assert to_srt(SEGMENTS) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n00:00:02,500 --> 01:01:01,046\nGeneral Kenobi.\n"
    )


def test_vtt() -> None:
    assert to_vtt(SEGMENTS) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n00:00:02.500 --> 01:01:01.046\nGeneral Kenobi.\n"
    )


def test_verbose_json() -> None:
    verbose = to_verbose(TRANSCRIPT)
    assert verbose.language == "english"
    assert verbose.usage is not None and verbose.usage.seconds == 3662
    second = verbose.segments[1]
    assert (second.id, second.seek, second.start, second.end, second.tokens) == (1, 250, 2.5, 3661.046, [1, 2])
    assert second.avg_logprob is None


def test_render_content_types() -> None:
    assert json.loads(bytes(render(TRANSCRIPT, "json").body)) == {
        "text": "Hello there. General Kenobi.",
        "usage": {"type": "duration", "seconds": 3662},
    }
    text = render(TRANSCRIPT, "text")
    assert bytes(text.body) == b"Hello there. General Kenobi.\n"
    assert text.media_type == "text/plain"
    assert render(TRANSCRIPT, "srt").media_type == "application/x-subrip"
    assert render(TRANSCRIPT, "vtt").media_type == "text/vtt"
    assert json.loads(bytes(render(TRANSCRIPT, "verbose_json").body))["segments"][0]["text"] == " Hello there."
