"""Render a transcript in OpenAI's response formats: json, text, srt, vtt and verbose_json."""

from __future__ import annotations

import math

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from comps.asr.backends.base import Segment, Transcript
from comps.asr.languages import language_name
from comps.asr.schemas import DurationUsage, ResponseFormat, Transcription, VerboseSegment, VerboseTranscription


def timestamp(seconds: float, *, decimal_marker: str) -> str:
    """`HH:MM:SS<marker>mmm`, as SRT (",") and WebVTT (".") write times."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{millis:03d}"


def _span(segment: Segment, decimal_marker: str) -> str:
    start = timestamp(segment.start, decimal_marker=decimal_marker)
    return f"{start} --> {timestamp(segment.end, decimal_marker=decimal_marker)}"


def to_srt(segments: list[Segment]) -> str:
    """SubRip subtitles: numbered cues separated by blank lines."""
    cues = [f"{index}\n{_span(s, ',')}\n{s.text.strip()}\n" for index, s in enumerate(segments, 1)]
    return "\n".join(cues)


def to_vtt(segments: list[Segment]) -> str:
    """WebVTT subtitles."""
    cues = [f"{_span(s, '.')}\n{s.text.strip()}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_verbose(transcript: Transcript) -> VerboseTranscription:
    """OpenAI's `verbose_json` body."""
    return VerboseTranscription(
        language=language_name(transcript.language or ""),
        duration=round(transcript.duration_s, 3),
        text=transcript.text,
        segments=[
            VerboseSegment(
                id=index,
                seek=round(s.start * 100),
                start=round(s.start, 3),
                end=round(s.end, 3),
                text=s.text,
                tokens=list(s.tokens),
                temperature=s.temperature,
                avg_logprob=s.avg_logprob,
                compression_ratio=s.compression_ratio,
                no_speech_prob=s.no_speech_prob,
            )
            for index, s in enumerate(transcript.segments)
        ],
        usage=_usage(transcript),
    )


def _usage(transcript: Transcript) -> DurationUsage:
    return DurationUsage(seconds=math.ceil(transcript.duration_s))


def render(transcript: Transcript, response_format: ResponseFormat) -> Response:
    """The HTTP response for one format; text formats end with a newline as OpenAI's do."""
    if response_format == "json":
        body = Transcription(text=transcript.text, usage=_usage(transcript))
        return JSONResponse(body.model_dump(mode="json"))
    if response_format == "verbose_json":
        return JSONResponse(to_verbose(transcript).model_dump(mode="json"))
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if response_format == "srt":
        return PlainTextResponse(to_srt(transcript.segments), media_type="application/x-subrip")
    return PlainTextResponse(to_vtt(transcript.segments), media_type="text/vtt")
