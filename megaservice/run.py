"""One run of a schedule: a future or an ordered stream per node, records, events, stream-edge mapping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from comps.core.concurrency import first_failure
from comps.core.errors import ServiceError
from megaservice.calls import Caller
from megaservice.dag import DAG
from megaservice.edges import Edge, ScheduleContext
from megaservice.records import NodeEvent, NodeRecord, Observer, RuntimeGraph, Schedule
from megaservice.streams import ItemStream, ordered_map

if TYPE_CHECKING:
    from megaservice.orchestrator import ServiceOrchestrator


class Run:
    """The state of one schedule: futures and streams per node, records, events."""

    def __init__(
        self, owner: ServiceOrchestrator, context: ScheduleContext, provided: dict[str, Any], observer: Observer | None
    ) -> None:
        self.owner = owner
        self.context = context
        self.provided = provided
        self.observer = observer
        self.caller = Caller(owner.client, backoff_s=owner.backoff_s, max_backoff_s=owner.max_backoff_s)
        self.start = time.perf_counter()
        self.values: dict[str, asyncio.Future[Any]] = {}
        self.streams: dict[str, ItemStream[Any]] = {}
        self.records: dict[str, NodeRecord] = {}

    def _notify(self, event: NodeEvent) -> None:
        if self.observer is not None:
            self.observer(event)

    async def execute(self, nodes: list[str]) -> Schedule:
        loop = asyncio.get_running_loop()
        kept = set(nodes) | set(self.provided)
        dag = self.owner.dag.subgraph(kept)
        for name in dag.topological_order():
            self.records[name] = NodeRecord(name)
            if name in self.provided:
                self.records[name].status = "provided"
                self.values[name] = loop.create_future()
                self.values[name].set_result(self.provided[name])
            elif self.owner.streams(name):
                self.streams[name] = ItemStream()
            else:
                self.values[name] = loop.create_future()
        try:
            await first_failure(*(self._run_node(name, dag) for name in nodes))
        finally:
            for future in self.values.values():
                future.cancel()  # no-op on finished ones; unblocks nothing else after a failure
        results: dict[str, Any] = {name: future.result() for name, future in self.values.items()}
        results.update({name: list(stream.items) for name, stream in self.streams.items()})
        return Schedule(results, RuntimeGraph(dag, self.records))

    async def _input(self, name: str) -> Any:
        if name in self.streams:
            return await self.streams[name].collect()
        return await asyncio.shield(self.values[name])

    async def _request(self, name: str, incoming: list[Edge]) -> Any:
        """The node's request: the initial inputs for a root, else its adapted inputs (merged for a join)."""
        if not incoming:
            return self.context.inputs
        parts = []
        for edge in incoming:
            value = await self._input(edge.source)
            parts.append(edge.adapter(value, self.context) if edge.adapter else value)
        if len(parts) == 1:
            return parts[0]
        merged: dict[str, Any] = {}
        for part in parts:  # OPEA's join: later inputs win on equal keys
            merged.update(part.model_dump(exclude_none=True) if isinstance(part, BaseModel) else dict(part))
        return merged

    async def _run_node(self, name: str, dag: DAG) -> None:
        service = self.owner.services[name]
        record = self.records[name]
        incoming = [e for e in self.owner.edges if e.target == name and e.source in dag]

        def attempt() -> None:
            record.attempts += 1

        try:
            stream_edge = next((e for e in incoming if e.stream), None)
            if stream_edge is not None:
                # A per-item node starts with its first item, not when the schedule does.
                await self._run_per_item(name, stream_edge, attempt)
                self._succeed(name)
                return
            request = await self._request(name, incoming)
            self._start(name)
            if service.stream_decoder is not None:
                out = self.streams[name]

                def emit(item: Any) -> None:
                    self._item(name, len(out.items), item, None)
                    out.append(item)

                await self.caller.stream(service, request, emit, attempt)
                out.close()
            else:
                self.values[name].set_result(await self.caller.unary(service, request, attempt))
        except ServiceError as exc:
            record.status, record.error = "failed", exc
            self._finish(record)
            if name in self.streams:
                self.streams[name].close(exc)
            self._notify(NodeEvent("failed", name, error=exc))
            raise
        self._succeed(name)

    def _start(self, name: str) -> None:
        record = self.records[name]
        record.status, record.started_s = "running", time.perf_counter() - self.start
        self._notify(NodeEvent("started", name))

    def _succeed(self, name: str) -> None:
        record = self.records[name]
        record.status = "ok"
        self._finish(record)
        value = self.streams[name].items if name in self.streams else self.values[name].result()
        self._notify(NodeEvent("finished", name, value=value))

    def _finish(self, record: NodeRecord) -> None:
        if record.started_s is not None:
            record.duration_s = time.perf_counter() - self.start - record.started_s

    def _item(self, name: str, index: int, value: Any, request: Any) -> None:
        record = self.records[name]
        record.items += 1
        if record.first_item_s is None and record.started_s is not None:
            record.first_item_s = time.perf_counter() - self.start - record.started_s
        self._notify(NodeEvent("item", name, index=index, value=value, request=request))

    async def _run_per_item(self, name: str, edge: Edge, attempt: Callable[[], None]) -> None:
        service = self.owner.services[name]
        source: AsyncIterator[Any] = aiter(self.streams[edge.source])
        if edge.regroup is not None:
            source = edge.regroup(source, self.context)

        async def call(index: int, item: Any) -> Any:
            if index == 0:
                self._start(name)
            request = edge.adapter(item, self.context) if edge.adapter else item
            began = time.perf_counter()
            value = await self.caller.unary(service, request, attempt)
            self.records[name].item_durations_s.append(time.perf_counter() - began)
            # Reported in order: ordered_map appends in order, and this event fires from its emit step.
            return _Produced(index, value, request)

        produced: ItemStream[_Produced] = ItemStream()
        out = self.streams[name]

        async def relay() -> None:
            async for item in produced:
                self._item(name, item.index, item.value, item.request)
                out.append(item.value)

        await first_failure(ordered_map(source, call, produced, concurrency=edge.concurrency), relay())
        out.close()


@dataclass(frozen=True)
class _Produced:
    index: int
    value: Any
    request: Any
