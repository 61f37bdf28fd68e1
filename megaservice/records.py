"""What a schedule leaves behind: per-node records (timings, attempts, errors), events, the runtime graph."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from comps.core.errors import ServiceError
from megaservice.dag import DAG

NodeStatus = Literal["pending", "running", "ok", "failed", "provided"]


@dataclass
class NodeRecord:
    """One node's run. Times are seconds; `started_s` is measured from the start of the schedule.

    Attributes:
        name: the node.
        status: pending, running, ok, failed, or provided (its result was given, it was not called).
        started_s: when the node started, or None if it never did.
        duration_s: from start to its last output (for a streaming node: to the end of its stream).
        attempts: HTTP attempts made (a streaming-per-item node counts every item's attempts).
        error: the error it failed with.
        items: items emitted by a streaming node.
        first_item_s: seconds from the node's start to its first item.
        item_durations_s: per-item call durations for a node fed by a stream edge.
    """

    name: str
    status: NodeStatus = "pending"
    started_s: float | None = None
    duration_s: float | None = None
    attempts: int = 0
    error: ServiceError | None = None
    items: int = 0
    first_item_s: float | None = None
    item_durations_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class NodeEvent:
    """Progress of a schedule, as it happens.

    `kind` is "started", "item" (a stream item: `index`, `value` and the `request` that produced it),
    "finished" (with the node's `value`), or "failed" (with the `error`).
    """

    kind: Literal["started", "item", "finished", "failed"]
    node: str
    index: int | None = None
    value: Any = None
    request: Any = None
    error: ServiceError | None = None


Observer = Callable[[NodeEvent], None]
"""Called synchronously for every event; it must not block (put it on a queue)."""


class RuntimeGraph:
    """The graph that actually ran (nodes pruned by `provided` left out) and every node's record."""

    def __init__(self, dag: DAG, records: dict[str, NodeRecord]) -> None:
        """Wrap the runtime DAG and its records."""
        self.dag = dag
        self.records = records

    def all_leaves(self) -> list[str]:
        """OPEA's name: the nodes whose results are the answer."""
        return self.dag.leaves()

    def timings(self) -> dict[str, float]:
        """Seconds per node that ran (provided nodes are left out)."""
        return {
            name: record.duration_s
            for name, record in self.records.items()
            if record.duration_s is not None and record.status != "provided"
        }


class Schedule(NamedTuple):
    """`schedule()`'s answer, unpackable as OPEA's `(result_dict, runtime_graph)`.

    `results` maps each node to its typed output (a list of items for a streaming node).
    """

    results: dict[str, Any]
    runtime_graph: RuntimeGraph
