"""The ``prometheus`` skill against a real Prometheus (the Debian package) on loopback.

A tiny exporter serves ``/metrics`` (an error gauge per service, 30 series of a
fan-out metric); Prometheus scrapes it every second and evaluates one alert rule.
Every wait polls for a condition: nothing here depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rootloop.models import Finding, Status
from rootloop.serve.testing import wait_for
from rootloop.skills.base import CheckContext, Node
from rootloop.skills.prometheus import PrometheusSettings, PrometheusSkill, PromQuery
from rootloop_lab.servers.ports import free_port
from rootloop_lab.servers.prometheus import Daemon, binary, start_prometheus

try:
    binary("prometheus", "prometheus")
except Exception:  # pragma: no cover - the Debian package is part of the set-up
    pytest.skip("prometheus is not installed", allow_module_level=True)


class Exporter:
    """``errors_now{service=...}`` gauges the test sets, and 30 series of ``fanout``."""

    def __init__(self) -> None:
        self.errors = {"checkout": 0.0, "inventory-db": 0.0}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                lines = ["# TYPE errors_now gauge"]
                lines += [f'errors_now{{svc="{k}"}} {v}' for k, v in outer.errors.items()]
                lines += ["# TYPE fanout gauge"] + [f'fanout{{i="{i}"}} {i}' for i in range(30)]
                data = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


RULES = {
    "groups": [
        {
            "name": "t",
            "rules": [
                {
                    "alert": "TooManyErrors",
                    "expr": 'label_replace(errors_now, "service", "$1", "svc", "(.*)") > 10',
                    "for": "1s",
                    "labels": {"severity": "page"},
                    "annotations": {"summary": "{{ $labels.service }} errs"},
                }
            ],
        }
    ]
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Exporter, Daemon]]:
    exporter = Exporter()
    prom = start_prometheus(
        tmp_path_factory.mktemp("prom"),
        {"demo": f"127.0.0.1:{exporter.port}"},
        "http://127.0.0.1:9",  # no Alertmanager: the skill reads alerts from Prometheus
        rules=RULES,
        scrape_interval="1s",
        evaluation_interval="1s",
    )
    try:
        yield exporter, prom
    finally:
        prom.stop()
        exporter.server.shutdown()


def check(url: str, **settings: object) -> Finding:
    node = Node(
        name="metrics",
        type="prometheus",
        skill="prometheus",
        role="downstream",
        component="metrics",
        service="checkout",
        timeout=10,
        settings=PrometheusSettings(url=url, **settings),  # type: ignore[arg-type]
    )

    async def go() -> Finding:
        ctx = CheckContext()
        try:
            return await PrometheusSkill().check(node, ctx)
        finally:
            await ctx.aclose()

    return asyncio.run(go())


def has_data(url: str) -> bool:
    q = PromQuery(expr="errors_now", label="e")
    return check(url, alerts=False, queries=[q]).signal("e") is not None


def test_a_firing_alert_makes_the_node_critical_and_names_its_service(world) -> None:
    exporter, prom = world
    wait_for("the first scrape", lambda: has_data(prom.url))
    calm = check(prom.url)
    assert calm.status is Status.OK and calm.value("alerts_firing") == 0
    exporter.errors["inventory-db"] = 50
    found = wait_for(
        "the alert to fire",
        lambda: (f := check(prom.url)).status is Status.CRITICAL and f,
    )
    assert isinstance(found, Finding)
    assert "TooManyErrors" in found.summary
    assert [s.node for s in found.suspects] == ["inventory-db"]
    assert any("TooManyErrors" in e.text and "inventory-db" in e.text for e in found.evidence)
    # a filter that matches no alert's labels sees none
    assert check(prom.url, alert_match={"team": "nobody"}).status is Status.OK
    exporter.errors["inventory-db"] = 0


def test_queries_are_judged_and_large_results_summarised(world) -> None:
    _, prom = world
    wait_for("the first scrape", lambda: has_data(prom.url))
    found = check(
        prom.url,
        alerts=False,
        max_series=5,
        queries=[
            PromQuery(expr="fanout", label="fanout", warn=20, crit=28),
            PromQuery(expr="min(fanout)", label="lowest", direction="down", warn=1),
        ],
    )
    assert found.status is Status.CRITICAL  # fanout{i="29"} = 29 >= 28
    assert found.value("fanout") == 29
    assert found.signal("lowest") is not None and found.signal("lowest").status is Status.DEGRADED
    text = next(e.text for e in found.evidence if e.title.startswith("fanout"))
    assert text.splitlines()[0].startswith('fanout{i="29",')  # the worst first
    assert len(text.splitlines()) == 6 and text.endswith("and 25 more series")


def test_the_incident_window_is_scored_against_its_baseline(world) -> None:
    exporter, prom = world
    exporter.errors["checkout"] = 1
    wait_for("the first scrape", lambda: has_data(prom.url))
    q = PromQuery(
        expr='errors_now{svc="checkout"}', label="errs", baseline_minutes=1.0, step_seconds=1
    )
    # a flat baseline first: no anomaly, whatever the window holds
    wait_for(
        "a baseline's worth of samples",
        lambda: (
            (f := check(prom.url, alerts=False, queries=[q], window_minutes=0.1)).signal(
                "errs_anomaly"
            )
            is not None
            and f.status is Status.OK
        ),
    )
    exporter.errors["checkout"] = 9  # nine times the usual, under any threshold (none is set)
    found = wait_for(
        "the jump to score as an anomaly",
        lambda: (
            (f := check(prom.url, alerts=False, queries=[q], window_minutes=0.1)).status
            is Status.DEGRADED
            and f
        ),
    )
    assert isinstance(found, Finding)
    assert found.anomaly_started_at is not None
    assert "far from its baseline" in found.summary
    exporter.errors["checkout"] = 0


def test_bad_promql_and_a_dead_server_are_findings_not_crashes(world, tmp_path: Path) -> None:
    _, prom = world
    bad = check(prom.url, alerts=False, queries=[PromQuery(expr="rate(", label="x")])
    assert bad.status is Status.UNKNOWN and "bad_data" in (bad.error or "")
    dead = check(f"http://127.0.0.1:{free_port()}")
    assert dead.status is Status.UNREACHABLE
