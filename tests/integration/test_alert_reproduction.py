"""An alert that started a run is reproduced with its own query, on a real Prometheus.

The run's sweep finds nothing wrong (every fake node is healthy), so the loop must try
to reproduce the complaint before it may end: the alert's PromQL (from its
``generatorURL``) runs again against the Prometheus the map names. Prometheus is the
Debian package's binary on loopback, scraping itself, so ``up{job="prometheus"}`` is a
real series with real labels.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

import rootloop
from rootloop.context import ContextStore, DebugContext
from rootloop.errors import PlatformError
from rootloop.models import AlertContext, Finding, Status
from rootloop.platforms.prometheus import PrometheusClient
from rootloop.skills import registry
from rootloop.skills.base import BaseSkill, CheckContext, Node, SkillSettings
from rootloop_lab.servers.ports import free_port
from tests.fakes import FakeExecutor, Harness, ScriptedReasoner, World

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

pytestmark = [
    pytest.mark.usefixtures("fake_world_hosts_actions"),
    pytest.mark.skipif(not Path(PROMETHEUS).exists(), reason="apt-get install prometheus"),
]


class QuietPrometheusSettings(SkillSettings):
    url: str


class QuietPrometheus(BaseSkill):
    """The map's Prometheus node, checked as healthy: the sweep must find nothing wrong,
    so that only the alert's own query can reproduce the complaint."""

    name = "prometheus"
    Settings = QuietPrometheusSettings
    default_timeout = 10.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        return self.finding(node, Status.OK, "no alert rules of its own")


@pytest.fixture
def quiet_prometheus_skill(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    target = f"{__name__}:QuietPrometheus"
    monkeypatch.setitem(registry._REGISTERED, "prometheus", target)
    registry.get.cache_clear()
    yield
    registry.get.cache_clear()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping itself every second; its base URL once ``up`` is in."""
    root = tmp_path_factory.mktemp("prometheus")
    for _attempt in range(3):
        port = free_port()
        config = root / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: prometheus\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        )
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(root / "prometheus.log").open("ab"),
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=5)
                up = r.status_code == 200 and bool(r.json()["data"]["result"])
            except (httpx.HTTPError, ValueError, KeyError):
                up = False
            if up:
                break
            time.sleep(0.5)
        if up:
            try:
                yield url
            finally:
                proc.terminate()
                proc.wait(30)
            return
        proc.kill()
        proc.wait(30)
    pytest.fail(f"Prometheus did not start; see {root / 'prometheus.log'}")


def harness(tmp_path: Path, prometheus_url: str | None) -> Harness:
    world = World()
    node = (
        f"  - {{name: metrics, type: metrics, skill: prometheus, url: '{prometheus_url}'}}"
        if prometheus_url
        else ""
    )
    path = tmp_path / "rootloop.yaml"
    path.write_text(
        "\n".join(
            [
                "service: svc",
                "environment: staging",
                "self:",
                f"  compute: {{skill: fake-world, world: {world.id}}}",
                "downstream:",
                f"  - {{name: db, type: db, skill: fake-world, world: {world.id}}}",
                node,
                "policy: {settle_seconds: 0, verify_timeout: 2, max_iterations: 3}",
            ]
        )
        + "\n"
    )
    return Harness(
        topology=rootloop.load_map(path, env={}),
        store=ContextStore(tmp_path / "state"),
        reasoner=ScriptedReasoner({}),
        executor=FakeExecutor({}),
    )


def alert(prometheus_url: str, expr: str, **labels: str) -> AlertContext:
    return AlertContext(
        source="alertmanager",
        labels={"alertname": "PrometheusScrapeUp", "severity": "page", **labels},
        annotations={"summary": "the scrape target answers"},
        generator_url=f"{prometheus_url}/graph?g0.expr={quote(expr)}&g0.tab=1",
    )


def run_with(h: Harness, alert_ctx: AlertContext | None) -> DebugContext:
    ctx = h.new_context()
    ctx.alert = alert_ctx
    return asyncio.run(h.run(ctx))


def own_labels(url: str) -> dict[str, str]:
    return {"job": "prometheus", "instance": url.removeprefix("http://")}


@pytest.mark.usefixtures("quiet_prometheus_skill")
def test_an_alert_whose_query_still_fires_is_reproduced_and_escalated(tmp_path, prometheus):
    expr = 'up{job="prometheus"} == 1'
    h = harness(tmp_path, prometheus)
    ctx = run_with(h, alert(prometheus, expr, **own_labels(prometheus)))
    assert ctx.status == "escalated"
    assert "PrometheusScrapeUp still fires" in ctx.status_reason
    assert expr in ctx.status_reason
    assert h.executor.applied == []
    assert any("series of this alert" in line for line in ctx.reproduction)


@pytest.mark.usefixtures("quiet_prometheus_skill")
def test_an_alert_whose_query_returns_nothing_is_not_reproduced_listing_it(tmp_path, prometheus):
    expr = 'up{job="prometheus"} == 0'
    h = harness(tmp_path, prometheus)
    ctx = run_with(h, alert(prometheus, expr, **own_labels(prometheus)))
    assert ctx.status == "not-reproduced"
    line = next(x for x in ctx.reproduction if expr in x)
    assert "returns nothing now" in line and "metrics" in line
    assert "not reproduced" in ctx.status_reason and expr in ctx.status_reason


@pytest.mark.usefixtures("quiet_prometheus_skill")
def test_series_of_other_instances_do_not_reproduce_this_alert(tmp_path, prometheus):
    expr = 'up{job="prometheus"} == 1'
    h = harness(tmp_path, prometheus)
    ctx = run_with(h, alert(prometheus, expr, job="prometheus", instance="10.0.0.9:9090"))
    assert ctx.status == "not-reproduced"
    assert any("none with this alert's labels" in x for x in ctx.reproduction)


def test_without_a_prometheus_in_the_map_the_query_is_listed_as_not_run(tmp_path):
    h = harness(tmp_path, None)
    ctx = run_with(h, alert("http://127.0.0.1:9", "up == 0"))
    assert ctx.status == "not-reproduced"
    assert any("the map names no Prometheus" in x for x in ctx.reproduction)


@pytest.mark.usefixtures("quiet_prometheus_skill")
def test_a_query_prometheus_rejects_is_listed_as_not_run_not_as_quiet(tmp_path, prometheus):
    h = harness(tmp_path, prometheus)
    ctx = run_with(h, alert(prometheus, "up{job=", **own_labels(prometheus)))
    assert ctx.status == "not-reproduced"
    line = next(x for x in ctx.reproduction if "could not run" in x)
    assert "bad_data" in line


def test_the_client_reads_vectors_and_reports_errors_clearly(prometheus):
    client = PrometheusClient(prometheus)
    result = asyncio.run(client.query('up{job="prometheus"}'))
    assert result.result_type == "vector" and result.samples
    assert result.samples[0].labels["job"] == "prometheus"
    assert asyncio.run(client.query("vector(1) > 2")).empty
    with pytest.raises(PlatformError, match="bad_data"):
        asyncio.run(client.query("sum(("))
    with pytest.raises(PlatformError, match=r"unreachable|did not answer"):
        asyncio.run(PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=3).query("up"))
