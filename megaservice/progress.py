"""The real-time answer's progress, typed: the video that streams it, what was heard, each text delta.

The orchestrator reports generic `NodeEvent`s; the tracker turns the stages' events into the facts
a client of the answer cares about (the lip-sync stream reports its video itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from comps.core.contracts import AsrResponse
from megaservice.records import NodeEvent


@dataclass(frozen=True)
class Heard:
    """The transcript of the question."""

    transcript: str


@dataclass(frozen=True)
class Wrote:
    """The next piece of the answer's text."""

    delta: str


@dataclass(frozen=True)
class VideoStarted:
    """The answer's one video exists (still empty): the animation service streams it by this id as it grows."""

    video_id: str


Progress = Heard | Wrote | VideoStarted
ProgressObserver = Callable[[Progress], None]
"""Called synchronously for every fact; it must not block."""


class ProgressTracker:
    """An orchestrator observer that reports the streamed graph's progress to `report`."""

    def __init__(self, report: ProgressObserver) -> None:
        """Report to `report`."""
        self._report = report

    def __call__(self, event: NodeEvent) -> None:
        # Each node's values were validated against its contract by the call that made them.
        if event.node == "asr" and event.kind == "finished":
            assert isinstance(event.value, AsrResponse)
            self._report(Heard(event.value.asr_result))
        if event.kind != "item" or event.index is None:
            return
        if event.node == "llm":
            self._report(Wrote(str(event.value)))
