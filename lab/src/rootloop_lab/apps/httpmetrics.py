"""What each lab service tells Prometheus about itself, at ``GET /metrics``.

The three signals an HTTP service's service levels are written on, and nothing
derived: requests answered (by method, route and status code), how long they
took (a histogram), and whether its own health check last passed. Alert rules
compute error ratios and latency quantiles from these with PromQL, as they would
for any service instrumented with ``prometheus_client``.

``route`` is the path's first segment from the service's own list of routes
(``/api/payments/7`` counts as ``/api``), never the raw path: a client probing
random paths must not grow the series without bound. Each process has its own
registry (one per task, like a task behind a target group).
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"

disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series only double a scrape


class HttpMetrics:
    def __init__(self, routes: tuple[str, ...]) -> None:
        self.routes = frozenset(routes) | {HEALTH_PATH}
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route and status code.",
            ["method", "route", "code"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "http_request_duration_seconds",
            "Time from reading the request line to sending the response head.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.healthy = Gauge(
            "service_health_up",
            "1 if the service's last /health answer was a success (2xx), else 0.",
            registry=self.registry,
        )
        self.healthy.set(1)

    def route(self, path: str) -> str:
        head = "/" + path.split("?", 1)[0].lstrip("/").split("/", 1)[0]
        return head if head in self.routes else "other"

    def observe(self, method: str, path: str, code: int, seconds: float) -> None:
        route = self.route(path)
        self.requests.labels(method, route, str(code)).inc()
        self.seconds.labels(method, route).observe(seconds)
        if route == HEALTH_PATH:
            self.healthy.set(1 if 200 <= code < 300 else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
