"""Connection leak: each precondition, and the look-alikes that must not be named a leak
(one forgotten session that blocks others; sessions begun together; a pool of idle
sessions at max_connections)."""

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
from rootloop.reasoning.signatures_sessions import connection_leak
from rootloop.skills import registry

registry.register("test-sleep", "tests.unit.skills_for_tests:SleepSkill")

MAP = """\
service: payments-api
self:
  compute: {skill: test-sleep}
downstream:
  - {name: postgresql, type: db, skill: test-sleep}
  - {name: lambda-worker, type: compute, skill: test-sleep}
"""
CRIT, DEG, OK = Status.CRITICAL, Status.DEGRADED, Status.OK


def topo(tmp_path: Path) -> topology.Topology:
    (tmp_path / "m.yaml").write_text(MAP)
    return rootloop.load_map(tmp_path / "m.yaml", env={})


def pg(
    *,
    client: str = "lambda-worker",
    sessions: int = 6,
    spread: float | None = 20.0,
    blocking: int = 0,
    blocked: int = 0,
    role: str | None = "worker",
    idle_status: Status = DEG,
    ratio_status: Status = OK,
) -> Finding:
    return Finding(
        node="postgresql",
        skill="postgres",
        status=CRIT if blocked else DEG,
        summary=f"{sessions} session(s) idle in transaction > 5s",
        signals=[
            Signal(name="connections_used_ratio", value=0.3, status=ratio_status),
            Signal(name="blocked_sessions", value=blocked, status=CRIT if blocked else OK),
            Signal(name="idle_in_transaction", value=sessions, threshold=5, status=idle_status),
            Signal(name="idle_in_tx_top_client", value=client),
            Signal(name="idle_in_tx_top_client_sessions", value=sessions),
            Signal(name="idle_in_tx_top_client_spread_s", value=spread, unit="s"),
            Signal(name="idle_in_tx_top_client_blocking", value=blocking),
            Signal(name="idle_in_tx_top_client_role", value=role),
        ],
    )


def test_sessions_piling_up_over_time_from_one_client_are_a_leak(tmp_path):
    [hit] = connection_leak(pg(), topo(tmp_path))
    assert (hit.component, hit.category) == ("lambda-worker", cat.CONNECTION_LEAK)
    assert hit.facts == {
        "app": "lambda-worker",
        "database_node": "postgresql",
        "idle_tx_limit_s": 5,
        "role": "worker",
    }


def test_a_client_outside_the_map_puts_the_root_at_the_database(tmp_path):
    [hit] = connection_leak(pg(client="nightly-export"), topo(tmp_path))
    assert hit.component == "postgresql"


def test_the_leak_drives_a_role_timeout_first_then_ending_the_sessions(tmp_path):
    t = topo(tmp_path)
    p = RulesReasoner().propose_sync(
        ReasoningInput(topology=t, findings=[pg()], context=DebugContext(service="x"))
    )
    assert p.diagnosis.category == cat.CONNECTION_LEAK
    assert p.action is not None and p.action.kind == "set-role-timeout"
    assert (p.action.target, p.action.role, p.action.seconds) == ("postgresql", "worker", 5)


def test_one_forgotten_session_is_not_a_leak(tmp_path):
    assert connection_leak(pg(sessions=1, spread=0), topo(tmp_path)) == []


def test_sessions_begun_together_are_not_a_leak(tmp_path):
    # a batch that opened its transactions at once: the spread is under one threshold
    assert connection_leak(pg(spread=2.0), topo(tmp_path)) == []
    assert connection_leak(pg(spread=None), topo(tmp_path)) == []


def test_idle_sessions_judged_fine_are_not_a_leak(tmp_path):
    assert connection_leak(pg(idle_status=OK), topo(tmp_path)) == []


def test_a_session_that_blocks_others_is_a_blocking_lock_not_a_leak(tmp_path):
    f = pg(blocking=1, blocked=3)
    assert connection_leak(f, topo(tmp_path)) == []
    assert connection_leak(pg(blocked=2), topo(tmp_path)) == []


def test_a_pool_at_max_connections_without_idle_transactions_is_not_a_leak(tmp_path):
    hog = Finding(
        node="postgresql",
        skill="postgres",
        status=CRIT,
        summary="connections at 96% of max_connections",
        signals=[
            Signal(name="connections_used_ratio", value=0.96, threshold=0.9, status=CRIT),
            Signal(name="idle_in_transaction", value=0, threshold=5, status=OK),
        ],
    )
    assert connection_leak(hog, topo(tmp_path)) == []
    assert cat.CONNECTION_LEAK not in [h.category for h in match([hog], topo(tmp_path))]
