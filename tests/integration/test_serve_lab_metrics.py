"""The lab services' ``/metrics``: what Prometheus scrapes to page ``rootloop serve``.

A service built on the lab's ``Handler`` (as api-gateway, frontend-app and
notification-svc are) on a real loopback port, read back with Prometheus's own
text-format parser.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rootloop_lab.apps.common import Handler, Server
from rootloop_lab.apps.httpmetrics import HttpMetrics


class Flaky(Handler):
    metrics = HttpMetrics(("/notify",))
    failing = False

    def do_GET(self) -> None:
        if self.path == "/health":
            self.reply(503 if Flaky.failing else 200, {})
        else:
            self.reply(404, {})

    def do_POST(self) -> None:
        self.body()
        self.reply(503 if Flaky.failing else 202, {})


@pytest.fixture
def base() -> Iterator[str]:
    server = Server(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{base}/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_by_status_latency_and_health(base: str) -> None:
    with httpx.Client() as client:
        client.post(f"{base}/notify", json={})
        client.get(f"{base}/health")
        Flaky.failing = True
        try:
            client.post(f"{base}/notify", json={})
            client.post(f"{base}/notify", json={})
            client.get(f"{base}/health")
        finally:
            Flaky.failing = False
        client.get(f"{base}/no/such/path/123")
    got = samples(base)
    post = (("code", "503"), ("method", "POST"), ("route", "/notify"))
    assert got[("http_requests_total", post)] == 2
    assert (
        got[("http_requests_total", (("code", "202"), ("method", "POST"), ("route", "/notify")))]
        == 1
    )
    # an unknown path counts under one label, never as itself
    assert (
        got[("http_requests_total", (("code", "404"), ("method", "GET"), ("route", "other")))] == 1
    )
    assert not any("/metrics" in dict(labels).get("route", "") for _, labels in got)
    count = (("method", "POST"), ("route", "/notify"))
    assert got[("http_request_duration_seconds_count", count)] == 3
    assert got[("service_health_up", ())] == 0  # the last /health answered 503
    httpx.get(f"{base}/health")
    assert samples(base)[("service_health_up", ())] == 1
