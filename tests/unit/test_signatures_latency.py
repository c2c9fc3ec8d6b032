"""Slow dependency: the deepest node judged slow, and only slow, is the root; its callers
are victims; a node that fails, or has something unhealthy below it, is not this."""

from __future__ import annotations

from pathlib import Path

import rootloop
from rootloop import topology
from rootloop.models import Finding, Signal, Status
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import match
from rootloop.reasoning.signatures_latency import only_slow, slow_dependency
from rootloop.skills import registry

registry.register("test-sleep", "tests.unit.skills_for_tests:SleepSkill")

MAP = """\
service: payments-api
self:
  compute: {skill: test-sleep}
upstream:
  - {name: api-gateway, type: http, skill: test-sleep}
downstream:
  - {name: notification-svc, type: http, skill: test-sleep}
  - {name: redis, type: cache, skill: test-sleep}
"""
OK, DEG, CRIT = Status.OK, Status.DEGRADED, Status.CRITICAL


def topo(tmp_path: Path) -> topology.Topology:
    (tmp_path / "m.yaml").write_text(MAP)
    return rootloop.load_map(tmp_path / "m.yaml", env={})


def health(node: str, ms: float, lat: Status, code: int = 200, st: Status = OK) -> Finding:
    return Finding(
        node=node,
        skill="http-health",
        status=max((lat, st), key=lambda s: [OK, DEG, CRIT].index(s)),
        summary=f"HTTP {code} in {ms:.0f} ms",
        signals=[
            Signal(name="http_status", value=code, status=st),
            Signal(name="latency_ms", value=ms, threshold=1500, status=lat),
        ],
    )


def fine(node: str) -> Finding:
    return Finding(node=node, skill="test-sleep", status=OK, summary="ok")


def test_the_deepest_slow_dependency_is_the_root_and_its_callers_are_not(tmp_path):
    findings = [
        health("api-gateway", 2300, DEG),
        health("payments-api/compute", 2100, DEG),
        health("notification-svc", 2000, DEG),
        fine("redis"),
    ]
    (hit,) = slow_dependency(findings, topo(tmp_path))
    assert (hit.component, hit.category) == ("notification-svc", cat.SLOW_DEPENDENCY)
    assert "payments-api" in hit.summary
    assert any("latency_ms=2000" in e for e in hit.evidence)


def test_a_dependency_that_fails_is_not_slow_even_when_it_is_also_slow(tmp_path):
    findings = [health("notification-svc", 2000, DEG, code=503, st=CRIT), fine("redis")]
    assert slow_dependency(findings, topo(tmp_path)) == []


def test_a_slow_caller_over_a_failing_dependency_is_a_victim(tmp_path):
    failing = Finding(
        node="redis",
        skill="redis",
        status=CRIT,
        summary="OOM",
        signals=[Signal(name="oom_errors", value=3, status=CRIT)],
    )
    findings = [health("payments-api/compute", 2100, DEG), failing, fine("notification-svc")]
    assert slow_dependency(findings, topo(tmp_path)) == []


def test_the_entry_of_the_map_is_no_ones_dependency(tmp_path):
    findings = [health("api-gateway", 2300, DEG), fine("notification-svc"), fine("redis")]
    assert slow_dependency(findings, topo(tmp_path)) == []


def test_latency_within_its_threshold_is_not_slow(tmp_path):
    assert not only_slow(health("notification-svc", 300, OK))
    assert slow_dependency([health("notification-svc", 300, OK)], topo(tmp_path)) == []


def test_an_unreachable_node_is_not_merely_slow(tmp_path):
    f = Finding(
        node="notification-svc",
        skill="http-health",
        status=Status.UNREACHABLE,
        summary="timed out",
        signals=[Signal(name="latency_ms", value=5000, status=CRIT)],
    )
    assert not only_slow(f)


def test_a_slow_redis_ping_is_found_the_same_way(tmp_path):
    slow_redis = Finding(
        node="redis",
        skill="redis",
        status=DEG,
        summary="PING took 800ms",
        signals=[Signal(name="ping_ms", value=800, threshold=100, status=DEG)],
    )
    hits = match([slow_redis, fine("notification-svc")], topo(tmp_path))
    assert [(h.component, h.category) for h in hits] == [("redis", cat.SLOW_DEPENDENCY)]
