"""rootloop's own metrics, in Prometheus's text format.

Counters of what this process saw (intake by source and verdict, step
durations) come from ``prometheus_client``; the investigation gauges are read
from the store at scrape time, so every member of a fleet reports the same
truth about queued, running and finished investigations.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

disable_created_metrics()  # the *_created series only double the scrape
REGISTRY = CollectorRegistry(auto_describe=True)

INTAKE = Counter(
    "rootloop_serve_intake",
    "Alerts received, by source and by what intake did with them.",
    ["source", "verdict"],
    registry=REGISTRY,
)
REQUESTS = Counter(
    "rootloop_serve_requests",
    "Intake requests by source and HTTP status.",
    ["source", "code"],
    registry=REGISTRY,
)
INTAKE_SECONDS = Histogram(
    "rootloop_serve_intake_seconds",
    "Time from request to response for intake routes, in this process.",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "rootloop_serve_step_seconds",
    "Duration of investigation steps run in this process.",
    ["step"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
    registry=REGISTRY,
)


class StoreCollector(Collector):
    def __init__(self, counts) -> None:  # counts: () -> Store.counts()
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        counts = self._counts()
        status = GaugeMetricFamily(
            "rootloop_serve_investigations",
            "Investigations by status (queued, running, paused, ended).",
            labels=["status"],
        )
        for name in ("queued", "running", "paused", "ended"):
            status.add_metric([name], counts["status"].get(name, 0))
        yield status
        outcome = GaugeMetricFamily(
            "rootloop_serve_investigations_by_outcome",
            "Ended investigations by outcome.",
            labels=["outcome"],
        )
        for name, value in sorted(counts["outcome"].items()):
            outcome.add_metric([name], value)
        yield outcome


_collector: StoreCollector | None = None


def attach_store(counts) -> None:
    global _collector
    if _collector is not None:
        REGISTRY.unregister(_collector)
    _collector = StoreCollector(counts)
    REGISTRY.register(_collector)


def render() -> bytes:
    return generate_latest(REGISTRY)
