"""Rate limiting: a dependency answering 429 is named for it; a 503 (down), a slow 200
and a 429 from a node nothing calls are not."""

from __future__ import annotations

from pathlib import Path

import rootloop
from rootloop import topology
from rootloop.context import DebugContext
from rootloop.models import Finding, Signal, Status
from rootloop.reasoning import categories as cat
from rootloop.reasoning.base import ReasoningInput
from rootloop.reasoning.rules import RulesReasoner
from rootloop.reasoning.signatures import match
from rootloop.reasoning.signatures_ratelimit import rate_limited
from rootloop.skills import registry
from rootloop.skills.http_health import retry_after_s

registry.register("test-sleep", "tests.unit.skills_for_tests:SleepSkill")

MAP = """\
service: payments-api
self:
  compute: {skill: test-sleep}
upstream:
  - {name: api-gateway, type: http, skill: test-sleep}
downstream:
  - {name: notification-svc, type: http, skill: test-sleep}
"""
CRIT, DEG, OK = Status.CRITICAL, Status.DEGRADED, Status.OK


def topo(tmp_path: Path) -> topology.Topology:
    (tmp_path / "m.yaml").write_text(MAP)
    return rootloop.load_map(tmp_path / "m.yaml", env={})


def health(node: str, code: int, *, retry_after: float | None = None, ms: float = 3) -> Finding:
    signals = [
        Signal(name="http_status", value=code, status=OK if code == 200 else CRIT),
        Signal(name="latency_ms", value=ms, threshold=500, status=DEG if ms > 500 else OK),
    ]
    if retry_after is not None:
        signals.append(Signal(name="retry_after_s", value=retry_after, unit="s"))
    status = OK if code == 200 and ms <= 500 else (CRIT if code >= 500 else DEG)
    return Finding(
        node=node, skill="http-health", status=status, summary=f"HTTP {code}", signals=signals
    )


def test_a_dependency_answering_429_with_retry_after_is_rate_limited(tmp_path):
    [hit] = rate_limited(health("notification-svc", 429, retry_after=1), topo(tmp_path))
    assert (hit.component, hit.category) == ("notification-svc", cat.RATE_LIMITED)
    assert hit.facts["retry_after_s"] == 1 and hit.facts["callers"] == "payments-api"


def test_without_retry_after_a_429_still_names_the_limit(tmp_path):
    [hit] = rate_limited(health("notification-svc", 429), topo(tmp_path))
    assert "retry_after_s" not in hit.facts


def test_a_503_is_not_rate_limiting(tmp_path):
    f = health("notification-svc", 503, retry_after=30)
    assert rate_limited(f, topo(tmp_path)) == []
    assert [h.category for h in match([f], topo(tmp_path))] == [cat.DEPENDENCY_DOWN]


def test_slow_is_not_rate_limited(tmp_path):
    assert rate_limited(health("notification-svc", 200, ms=2500), topo(tmp_path)) == []


def test_a_429_from_a_node_nothing_calls_is_not_a_dependencys_limit(tmp_path):
    assert rate_limited(health("api-gateway", 429, retry_after=1), topo(tmp_path)) == []


def test_without_a_runbook_rung_the_limit_is_escalated_not_guessed(tmp_path):
    p = RulesReasoner().propose_sync(
        ReasoningInput(
            topology=topo(tmp_path),
            findings=[health("notification-svc", 429, retry_after=1)],
            context=DebugContext(service="x"),
        )
    )
    assert p.diagnosis.category == cat.RATE_LIMITED and p.action is None


def test_retry_after_reads_seconds_and_dates():
    assert retry_after_s("7") == 7.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_s("soon") is None and retry_after_s(None) is None


def test_with_the_services_runbook_rung_the_limit_is_restored(tmp_path):
    from rootloop.reasoning import runbooks as rb

    book = tmp_path / "books"
    book.mkdir()
    (book / "notification-svc.yaml").write_text(
        "service: notification-svc\nladders:\n  rate-limited:\n"
        "    - {kind: set-env, cluster: c, service: notification-svc,"
        " name: RATE_LIMIT_PER_S, value: '50'}\n"
    )
    p = RulesReasoner(rb.load(book)).propose_sync(
        ReasoningInput(
            topology=topo(tmp_path),
            findings=[health("notification-svc", 429, retry_after=1)],
            context=DebugContext(service="x"),
        )
    )
    assert p.action is not None and p.action.kind == "set-env"
    assert p.action.target == "notification-svc"
