"""Prometheus metrics: request counts and latencies per wire method, plus gauges
read from the database at scrape time (instances by state, live leases)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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
    REQUESTS.labels(method=method, status=str(status)).inc()
    LATENCY.labels(method=method).observe(seconds)


class DatabaseCollector(Collector):
    """Gauges that are only true in the database: computed per scrape."""

    def describe(self) -> Iterable[Metric]:
        return []  # no DB access at registration time

    def collect(self) -> Iterable[Metric]:
        from instances import selectors

        states = GaugeMetricFamily("relay_instances", "Instances by state.", labels=["state"])
        for state, count in selectors.instance_state_counts().items():
            states.add_metric([state], count)
        yield states
        leases = GaugeMetricFamily("relay_session_leases_live", "Instances held by a live runner lease.")
        leases.add_metric([], selectors.live_lease_count())
        yield leases
        for name, help_text, value in selectors.queue_depths():
            gauge = GaugeMetricFamily(name, help_text)
            gauge.add_metric([], value)
            yield gauge


REGISTRY.register(DatabaseCollector())


def render() -> bytes:
    return generate_latest(REGISTRY)
