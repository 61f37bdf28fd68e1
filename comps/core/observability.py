"""Request ids on every log record, per-endpoint latency statistics (OPEA's /v1/statistics) and Prometheus metrics."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from comps.core.errors import InternalError, error_response
from comps.core.request_id import REQUEST_ID_HEADER, new_request_id, request_id_var

logger = logging.getLogger(__name__)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record so one request's lines can be followed across modules."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the current request id; never drops a record."""
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str) -> None:
    """Set the root level and a format that carries the request id (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(f, RequestIdFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
        root.addHandler(handler)


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in [0, 100])."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class LatencyWindow:
    """The last `size` latencies (seconds) of one endpoint."""

    size: int
    values: deque[float] = field(default_factory=deque)
    count: int = 0

    def add(self, seconds: float) -> None:
        """Record one request; the oldest falls out beyond `size`."""
        self.values.append(seconds)
        self.count += 1
        while len(self.values) > self.size:
            self.values.popleft()

    def summary(self) -> dict[str, float | int | None]:
        """OPEA-style figures in seconds: p50, p99, average over the window, and the total count."""
        if not self.values:
            return {"count": self.count, "p50_latency": None, "p99_latency": None, "average_latency": None}
        ordered = sorted(self.values)
        return {
            "count": self.count,
            "p50_latency": _percentile(ordered, 50),
            "p99_latency": _percentile(ordered, 99),
            "average_latency": sum(ordered) / len(ordered),
        }


class Statistics:
    """Latency windows per endpoint plus Prometheus collectors in a registry owned by one app."""

    def __init__(self, *, service: str, window: int = 1000) -> None:
        """Create empty statistics; each app has its own registry so test apps never collide."""
        self.window = window
        self.endpoints: dict[str, LatencyWindow] = {}
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "avatarchat_requests",
            "Requests served",
            ["service", "method", "path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "avatarchat_request_duration_seconds",
            "Request latency in seconds",
            ["service", "method", "path"],
            registry=self.registry,
            buckets=(0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        # Work a request left behind shows here as a count that does not come back down once idle.
        self.tasks = Gauge(
            "avatarchat_event_loop_tasks",
            "asyncio tasks alive in the service's event loop at the scrape (the scrape's own included)",
            ["service"],
            registry=self.registry,
        )
        self.service = service

    def record(self, method: str, path: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.endpoints.setdefault(path, LatencyWindow(self.window)).add(seconds)
        self.requests.labels(self.service, method, path, str(status)).inc()
        self.latency.labels(self.service, method, path).observe(seconds)

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Figures per endpoint path template."""
        return {path: window.summary() for path, window in sorted(self.endpoints.items())}


def _route_template(request: Request) -> str:
    """The route's path template (`/v1/videos/{id}`) so ids do not explode the label set."""
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return str(getattr(route, "path", request.url.path))
    return "unmatched"


_UNTRACKED = {"/health", "/ready", "/metrics", "/v1/health_check", "/v1/statistics"}


def observe_requests(
    stats: Statistics,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """HTTP middleware: request id in and out, an access log line, statistics for real endpoints.

    It is the outermost of ours, so every answer carries the id, an unexpected failure's 500 included
    (answered here, inside the request's context, rather than by Starlette's outer error middleware).
    """

    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        rid = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
        token = request_id_var.set(rid)
        start = time.perf_counter()
        try:
            try:
                response = await call_next(request)
            except Exception as exc:
                logger.exception("unhandled error", exc_info=exc)
                response = error_response(InternalError(f"internal error: {type(exc).__name__}"))
            elapsed = time.perf_counter() - start
            path = _route_template(request)
            if path not in _UNTRACKED:
                stats.record(request.method, path, response.status_code, elapsed)
                logger.info("%s %s -> %d in %.3fs", request.method, request.url.path, response.status_code, elapsed)
        finally:
            request_id_var.reset(token)
        response.headers[REQUEST_ID_HEADER] = rid
        return response

    return middleware
