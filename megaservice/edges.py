"""Edges of the graph: the typed adapter of an edge, stream edges, and the context every adapter sees."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ScheduleContext:
    """What every adapter sees besides the upstream output: the request's inputs and parameters."""

    inputs: Any
    llm_parameters: Any
    options: Mapping[str, Any] = field(default_factory=dict)


Adapter = Callable[[Any, ScheduleContext], Any]
"""Maps a source node's typed output (one item, on a stream edge) to the target node's request."""

Regroup = Callable[[AsyncIterator[Any], ScheduleContext], AsyncIterator[Any]]
"""Turns a stream's items into other items before the target sees them (tokens into sentences)."""


@dataclass(frozen=True)
class Edge:
    """`source -> target`. A stream edge calls the target once per source item, in order."""

    source: str
    target: str
    adapter: Adapter | None = None
    stream: bool = False
    regroup: Regroup | None = None
    concurrency: int = 2
