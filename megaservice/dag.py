"""A small directed acyclic graph of node names: unknown nodes and cycles are refused with a clear error."""

from __future__ import annotations

from collections.abc import Iterable


class GraphError(ValueError):
    """The graph is not a DAG of known nodes (unknown node, duplicate, self-loop or cycle)."""


class DAG:
    """Nodes and edges, kept in insertion order so schedules are deterministic."""

    def __init__(self) -> None:
        """Start empty."""
        self._successors: dict[str, list[str]] = {}
        self._predecessors: dict[str, list[str]] = {}

    @property
    def nodes(self) -> list[str]:
        """Every node, in insertion order."""
        return list(self._successors)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Every edge as (source, target), in insertion order of the sources."""
        return [(source, target) for source, targets in self._successors.items() for target in targets]

    def __contains__(self, name: object) -> bool:
        return name in self._successors

    def add_node(self, name: str) -> None:
        """Add a node; a second node with the same name is an error."""
        if not name:
            raise GraphError("a node needs a non-empty name")
        if name in self._successors:
            raise GraphError(f"node {name!r} is already in the graph")
        self._successors[name] = []
        self._predecessors[name] = []

    def add_edge(self, source: str, target: str) -> None:
        """Add `source -> target`, refusing unknown nodes, duplicates and any edge that closes a cycle."""
        for name in (source, target):
            if name not in self._successors:
                known = ", ".join(self._successors) or "none"
                raise GraphError(f"unknown node {name!r} (known nodes: {known}); add it before connecting it")
        if source == target:
            raise GraphError(f"edge {source!r} -> {target!r} is a self-loop")
        if target in self._successors[source]:
            raise GraphError(f"edge {source!r} -> {target!r} already exists")
        path = self._path(target, source)
        if path is not None:
            cycle = " -> ".join([source, *path])
            raise GraphError(f"edge {source!r} -> {target!r} would close a cycle: {cycle}")
        self._successors[source].append(target)
        self._predecessors[target].append(source)

    def _path(self, start: str, goal: str) -> list[str] | None:
        """A path start -> ... -> goal along existing edges, or None (depth-first)."""
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            if node == goal:
                return path
            if node in seen:
                continue
            seen.add(node)
            stack.extend((child, [*path, child]) for child in self._successors[node])
        return None

    def successors(self, name: str) -> list[str]:
        """Nodes fed by `name`."""
        return list(self._successors[name])

    def predecessors(self, name: str) -> list[str]:
        """Nodes feeding `name`."""
        return list(self._predecessors[name])

    def roots(self) -> list[str]:
        """Nodes without predecessors (they receive the initial inputs)."""
        return [name for name, preds in self._predecessors.items() if not preds]

    def leaves(self) -> list[str]:
        """Nodes without successors (their results are the answer)."""
        return [name for name, succ in self._successors.items() if not succ]

    def topological_order(self) -> list[str]:
        """Nodes so that every edge points forward (Kahn's algorithm, stable by insertion order)."""
        remaining = {name: len(preds) for name, preds in self._predecessors.items()}
        ready = [name for name, count in remaining.items() if count == 0]
        order: list[str] = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for child in self._successors[node]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    ready.append(child)
        if len(order) != len(remaining):  # unreachable while add_edge refuses cycles; kept as a guard
            raise GraphError("the graph has a cycle")
        return order

    def subgraph(self, keep: Iterable[str]) -> DAG:
        """A copy holding only `keep` and the edges between them."""
        wanted = set(keep)
        graph = DAG()
        for name in self._successors:
            if name in wanted:
                graph.add_node(name)
        for source, target in self.edges:
            if source in wanted and target in wanted:
                graph.add_edge(source, target)
        return graph
