"""Prometheus metrics: request counts and latencies per wire method, plus gauges
read from the database at scrape time (instances by state, live leases)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from instances import selectors

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "relay_api_requests_total",
    "Wire API requests by method and HTTP status.",
    ["method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "relay_api_request_seconds",
    "Wire API request latency by method.",
    ["method"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)


def observe_request(method: str, status: int, seconds: float) -> None:
    _requests(method, status).inc()
    _latency(method).observe(seconds)


# The labelled children, looked up once: ``labels()`` validates and locks on every
# call, which showed in the send fast lane's profile. The label sets are small
# (wire method names × HTTP statuses).
@functools.cache
def _requests(method: str, status: int) -> Any:
    return REQUESTS.labels(method=method, status=str(status))


@functools.cache
def _latency(method: str) -> Any:
    return LATENCY.labels(method=method)


# Queue gauges the apps that own the queues add from their AppConfig.ready (the
# send queue is messaging's, the notification queue journals'): they build on
# instances, so instances cannot read their tables itself.
_queue_gauges: dict[str, tuple[str, Callable[[], int]]] = {}


def add_queue_gauge(name: str, help_text: str, read: Callable[[], int]) -> None:
    """Report ``read()`` as gauge ``name`` at every scrape (once per name)."""
    _queue_gauges.setdefault(name, (help_text, read))


class DatabaseCollector(Collector):
    """Gauges that are only true in the database: computed per scrape."""

    def describe(self) -> Iterable[Metric]:
        return []  # no DB access at registration time

    def collect(self) -> Iterable[Metric]:
        states = GaugeMetricFamily("relay_instances", "Instances by state.", labels=["state"])
        for state, count in selectors.instance_state_counts().items():
            states.add_metric([state], count)
        yield states
        leases = GaugeMetricFamily("relay_session_leases_live", "Instances held by a live runner lease.")
        leases.add_metric([], selectors.live_lease_count())
        yield leases
        depths = [(name, help_text, read()) for name, (help_text, read) in _queue_gauges.items()]
        for name, help_text, value in depths + selectors.queue_depths():
            gauge = GaugeMetricFamily(name, help_text)
            gauge.add_metric([], value)
            yield gauge


REGISTRY.register(DatabaseCollector())

# Collectors engines add from their AppConfig.ready (an engine's own tables, such as
# waweb's session health): once per name, however often ``ready`` runs.
_engine_collectors: set[str] = set()


def add_collector(name: str, collector: Collector) -> None:
    """Report ``collector``'s metrics at every scrape (once per ``name``)."""
    if name in _engine_collectors:
        return
    _engine_collectors.add(name)
    REGISTRY.register(collector)


def render() -> bytes:
    return generate_latest(REGISTRY)
