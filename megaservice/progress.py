"""The streamed AvatarChatbot graph's progress, typed: what was heard, each text delta, each sentence's video.

The orchestrator reports generic `NodeEvent`s; this turns the four stages' events into the three
facts a client of the answer cares about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from comps.core.contracts import AnimationResponse, AsrResponse, TtsRequest
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
class Rendered:
    """One sentence's video, in answer order."""

    index: int
    text: str
    video: AnimationResponse


Progress = Heard | Wrote | Rendered
ProgressObserver = Callable[[Progress], None]
"""Called synchronously for every fact; it must not block."""


class ProgressTracker:
    """An orchestrator observer that reports the streamed graph's progress to `report`."""

    def __init__(self, report: ProgressObserver) -> None:
        """Report to `report`."""
        self._report = report
        self._sentences: dict[int, str] = {}  # tts item index -> the sentence it spoke

    def __call__(self, event: NodeEvent) -> None:
        # Each node's values were validated against its contract by the call that made them.
        if event.node == "asr" and event.kind == "finished":
            assert isinstance(event.value, AsrResponse)
            self._report(Heard(event.value.asr_result))
        if event.kind != "item" or event.index is None:
            return
        if event.node == "llm":
            self._report(Wrote(str(event.value)))
        elif event.node == "tts":
            assert isinstance(event.request, TtsRequest)
            self._sentences[event.index] = event.request.text
        elif event.node == "animation":
            assert isinstance(event.value, AnimationResponse)
            self._report(Rendered(event.index, self._sentences.get(event.index, ""), event.value))
