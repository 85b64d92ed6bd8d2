"""Prometheus metrics of one app: request counts and latencies per route template and status, index and cache state.

Each app gets its own CollectorRegistry, so several apps in one process (tests) never clash.
Index and cache values are read from the LiveIndex at scrape time rather than pushed on every change.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recommender.serving import LiveIndex

__all__ = ["Metrics", "MetricsMiddleware", "route_label"]

# Related lookups take ~1-10 ms; cache hits well under 1 ms; reloads of the big index seconds.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _IndexCollector(Collector):
    def __init__(self, live: Callable[[], LiveIndex | None]) -> None:
        self._live = live

    def collect(self) -> Iterable[Metric]:
        live = self._live()
        if live is None:
            return
        snap = live.current
        ready = GaugeMetricFamily("recommender_index_ready", "1 when an index version is loaded and served")
        ready.add_metric([], 1.0 if snap is not None else 0.0)
        yield ready
        info = GaugeMetricFamily(
            "recommender_index_version_info", "The served index version (value 1)", labels=["version"]
        )
        size = GaugeMetricFamily("recommender_index_articles", "Articles served (base version plus live changes)")
        pending = GaugeMetricFamily("recommender_index_pending_changes", "Live changes applied on top of the version")
        loaded = GaugeMetricFamily("recommender_index_loaded_timestamp_seconds", "When the served version was loaded")
        if snap is not None:
            info.add_metric([snap.version], 1.0)
            size.add_metric([], float(len(snap.recommender)))
            pending.add_metric([], float(snap.pending))
            loaded.add_metric([], snap.loaded_at)
        yield from (info, size, pending, loaded)
        failed = GaugeMetricFamily("recommender_index_load_failed", "1 when the published version failed to load")
        failed.add_metric([], 1.0 if live.load_error else 0.0)
        yield failed
        damaged = GaugeMetricFamily(
            "recommender_wal_errors", "Change-log entries found unreadable or torn (kept aside in live/damaged/)"
        )
        damaged.add_metric([], float(len(live.log.damage)))
        yield damaged
        model = GaugeMetricFamily("recommender_model_ready", "1 when the model is loaded (drafts and live writes)")
        model.add_metric([], 1.0 if live.model_state == "ready" else 0.0)
        yield model
        reloads = CounterMetricFamily("recommender_index_reloads", "Versions loaded by this process")
        reloads.add_metric([], float(live.reloads))
        yield reloads
        cache = live.cache
        hits = CounterMetricFamily("recommender_cache_hits", "Response cache hits")
        hits.add_metric([], float(cache.hits))
        misses = CounterMetricFamily("recommender_cache_misses", "Response cache misses")
        misses.add_metric([], float(cache.misses))
        ratio = GaugeMetricFamily("recommender_cache_hit_ratio", "Response cache hits / lookups since start")
        ratio.add_metric([], cache.hit_ratio)
        entries = GaugeMetricFamily("recommender_cache_entries", "Entries in the response cache")
        entries.add_metric([], float(len(cache)))
        yield from (hits, misses, ratio, entries)


class _EventsCollector(Collector):
    """Events stored, dropped as duplicates and refused (POST /v1/events), read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        log, counters = self._metrics.events, self._metrics.event_counters
        if log is None:
            return
        values = [
            ("recommender_events_accepted", "Events stored (fsynced before the answer)", log.accepted),
            ("recommender_events_duplicates", "Events dropped as already stored (resent batches)", log.duplicates),
            ("recommender_events_write_failures", "Events refused because the log could not be written", log.failed),
            ("recommender_events_commits", "fsyncs of the event log (one covers every batch waiting)", log.commits),
        ]
        if counters is not None:
            values += [
                (
                    "recommender_events_invalid_batches",
                    "Batches refused with 422 (nothing stored)",
                    counters.invalid_batches,
                ),
                ("recommender_events_invalid_events", "Events in batches refused with 422", counters.invalid_events),
                ("recommender_events_rate_limited_batches", "Batches refused with 429", counters.rate_limited_batches),
            ]
        for name, text, value in values:
            family = CounterMetricFamily(name, text)
            family.add_metric([], float(value))
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "recommender_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recommender_http_request_duration_seconds",
            "HTTP request latency by route template, method and status",
            ["route", "method", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.live: LiveIndex | None = None
        self.registry.register(_IndexCollector(lambda: self.live))
        self.events: Any = None  # recommender.events.log.EventLog
        self.event_counters: Any = None
        self.registry.register(_EventsCollector(self))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


_CONVERTER = re.compile(r"\{([^{}:]+):[^{}]*\}")


@functools.lru_cache(maxsize=256)
def route_label(path: str) -> str:
    """The route template as documented: ``/v1/articles/{article_id:any_id}/related`` ->
    ``/v1/articles/{article_id}/related`` (the converter is an implementation detail)."""
    return _CONVERTER.sub(r"{\1}", path)


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    # Unmatched paths are attacker-chosen: one label for all of them keeps the series count bounded.
    return route_label(path) if isinstance(path, str) else "unmatched"


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): it adds microseconds, not a task per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe(_route_template(scope), scope["method"], status, time.perf_counter() - started)
