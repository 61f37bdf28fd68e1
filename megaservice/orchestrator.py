"""`ServiceOrchestrator`: OPEA's add / flow_to / schedule, async underneath, with typed edges and stream edges."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from megaservice.calls import build_client
from megaservice.dag import DAG, GraphError
from megaservice.edges import Adapter, Edge, Regroup, ScheduleContext
from megaservice.records import Observer, Schedule
from megaservice.run import Run
from megaservice.service import MicroService

__all__ = ["Adapter", "Edge", "Regroup", "ScheduleContext", "ServiceOrchestrator"]

logger = logging.getLogger(__name__)


def _name(node: MicroService | str) -> str:
    return node if isinstance(node, str) else node.name


class ServiceOrchestrator:
    """A DAG of MicroService nodes run on one shared `httpx.AsyncClient`.

    Independent branches run concurrently; a node starts as soon as all its inputs exist.
    Use as `async with ServiceOrchestrator() as orchestrator:` or call `aclose()` when done.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        connect_timeout_s: float = 5.0,
        backoff_s: float = 0.05,
        max_backoff_s: float = 1.0,
    ) -> None:
        """Create an empty graph.

        Args:
            client: a shared client (its owner mounts in-process apps, see `build_client`);
                by default one is built at the first schedule with every in-process node mounted.
            connect_timeout_s: connect timeout of the client built here.
            backoff_s: first retry delay in seconds (doubles per attempt).
            max_backoff_s: the longest retry delay, also the cap on a Retry-After hint.
        """
        self.services: dict[str, MicroService] = {}
        self.dag = DAG()
        self.edges: list[Edge] = []
        self._client = client
        self._owns_client = client is None
        self._connect_timeout_s = connect_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s

    # ---- building the graph -------------------------------------------------------------------

    def add(self, service: MicroService) -> Self:
        """Add a node (OPEA: `add`). Names are unique."""
        if self._client is not None and self._owns_client and service.in_process:
            raise GraphError(f"add in-process node {service.name!r} before the first schedule")
        self.dag.add_node(service.name)
        self.services[service.name] = service
        return self

    def flow_to(
        self,
        source: MicroService | str,
        target: MicroService | str,
        *,
        adapter: Adapter | None = None,
        stream: bool = False,
        regroup: Regroup | None = None,
        concurrency: int = 2,
    ) -> Self:
        """Connect `source -> target` (OPEA: `flow_to`); unknown nodes and cycles raise GraphError.

        Args:
            source: the upstream node.
            target: the downstream node.
            adapter: maps the source's output to the target's request; identity when None.
            stream: call the target once per item of the source's stream, results kept in order.
            regroup: on a stream edge, transforms the item stream first (e.g. tokens into sentences).
            concurrency: on a stream edge, items in flight at once (started and not yet emitted).
        """
        a, b = _name(source), _name(target)
        if a in self.services and b in self.services:
            self._check_edge(a, b, stream=stream, regroup=regroup, concurrency=concurrency)
        self.dag.add_edge(a, b)
        self.edges.append(Edge(a, b, adapter, stream, regroup, concurrency))
        return self

    def _check_edge(self, a: str, b: str, *, stream: bool, regroup: Regroup | None, concurrency: int) -> None:
        if self._stream_fed(b):
            raise GraphError(f"{b!r} is fed by a stream edge and cannot take another input")
        if regroup is not None and not stream:
            raise GraphError(f"edge {a!r} -> {b!r}: regroup needs stream=True")
        if not stream:
            return
        if concurrency < 1:
            raise GraphError(f"edge {a!r} -> {b!r}: concurrency must be at least 1")
        if not self.streams(a):
            raise GraphError(f"stream edge {a!r} -> {b!r}: {a!r} does not emit a stream")
        if self.services[b].stream_decoder is not None or self.dag.predecessors(b):
            raise GraphError(f"stream edge {a!r} -> {b!r}: the target must be a plain node with no other input")

    def _stream_fed(self, name: str) -> bool:
        return any(edge.stream for edge in self.edges if edge.target == name)

    def streams(self, name: str) -> bool:
        """Whether `name` emits an ordered stream of items (an SSE node, or one fed by a stream edge)."""
        return self.services[name].stream_decoder is not None or self._stream_fed(name)

    # ---- the shared client --------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        """The shared client (built on first use)."""
        if self._client is None:
            self._client = build_client(list(self.services.values()), connect_timeout_s=self._connect_timeout_s)
        return self._client

    async def aclose(self) -> None:
        """Close the client if this orchestrator built it."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ---- running ------------------------------------------------------------------------------

    def _runtime_nodes(self, provided: Mapping[str, Any]) -> list[str]:
        """Nodes to run: not provided, and a leaf or feeding a node that runs (reverse topological pass)."""
        needed: set[str] = set()
        for name in reversed(self.dag.topological_order()):
            successors = self.dag.successors(name)
            if name not in provided and (not successors or any(s in needed for s in successors)):
                needed.add(name)
        return [name for name in self.dag.topological_order() if name in needed]

    async def schedule(
        self,
        initial_inputs: Any,
        llm_parameters: Any = None,
        *,
        provided: Mapping[str, Any] | None = None,
        observer: Observer | None = None,
        **kwargs: Any,
    ) -> Schedule:
        """Run the graph once.

        Args:
            initial_inputs: the request of every root node (a model or a dict checked against its contract).
            llm_parameters: generation parameters, handed to every adapter in the context.
            provided: results given instead of calling those nodes (e.g. `{"asr": AsrResponse(...)}` for
                typed text); nodes that only feed provided nodes are left out of the runtime graph.
            observer: called with a NodeEvent as nodes start, emit items, finish or fail.
            **kwargs: extra options, handed to every adapter in `ScheduleContext.options`.

        Returns:
            `(results, runtime_graph)`; results hold every node's typed output.

        Raises:
            ServiceError: the first failing node's error, naming its stage.
        """
        given = dict(provided or {})
        unknown = [name for name in given if name not in self.services]
        if unknown:
            raise GraphError(f"provided results for unknown nodes: {unknown}")
        run = Run(self, ScheduleContext(initial_inputs, llm_parameters, kwargs), given, observer)
        return await run.execute(self._runtime_nodes(given))
