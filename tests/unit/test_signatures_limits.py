"""Client connection limits: each precondition, with evidence that holds and evidence
that looks alike but must not name the limit (memory pressure, max_connections, a
refusal the server's own counters do not back)."""

from __future__ import annotations

from pathlib import Path

import rootloop
from rootloop import topology
from rootloop.models import Finding, Signal, Status
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import match
from rootloop.reasoning.signatures_limits import postgres_connection_limit, redis_client_limit
from rootloop.skills import registry

registry.register("test-sleep", "tests.unit.skills_for_tests:SleepSkill")

MAP = """\
service: payments-api
self:
  compute: {skill: test-sleep}
downstream:
  - {name: redis, type: cache, skill: test-sleep}
  - {name: postgresql, type: database, skill: test-sleep}
"""
CRIT, DEG, OK = Status.CRITICAL, Status.DEGRADED, Status.OK


def topo(tmp_path: Path) -> topology.Topology:
    (tmp_path / "m.yaml").write_text(MAP)
    return rootloop.load_map(tmp_path / "m.yaml", env={})


def sig(name: str, value, status: Status = OK) -> Signal:
    return Signal(name=name, value=value, status=status)


def redis(status: Status, *signals: Signal, summary: str = "redis") -> Finding:
    return Finding(node="redis", skill="redis", status=status, summary=summary, signals=[*signals])


# -- Redis maxclients ------------------------------------------------------------------------


def test_the_servers_refusal_when_the_check_cannot_get_in_is_a_client_limit(tmp_path):
    f = redis(
        Status.UNREACHABLE,
        summary="127.0.0.1:6379/0: ConnectionError: max number of clients reached",
    )
    (hit,) = redis_client_limit(f, topo(tmp_path))
    assert (hit.component, hit.category) == ("redis", cat.CLIENT_LIMIT)
    assert "max number of clients reached" in hit.evidence[0]


def test_unreachable_for_another_reason_is_not_a_client_limit(tmp_path):
    f = redis(Status.UNREACHABLE, summary="127.0.0.1:6379/0: ConnectionError: refused")
    assert redis_client_limit(f, topo(tmp_path)) == []


def test_rejections_with_clients_at_maxclients_and_memory_fine_hold(tmp_path):
    f = redis(
        DEG,
        sig("rejected_connections", 57, DEG),
        sig("connected_clients", 10),
        sig("maxclients", 10),
        sig("clients_used_ratio", 1.0, CRIT),
        sig("used_memory_ratio", 0.1),
    )
    (hit,) = redis_client_limit(f, topo(tmp_path))
    assert hit.facts == {"maxclients": 10, "connected_clients": 10, "maxclients_x2": 20}
    assert len(hit.preconditions) == 3


def test_clients_near_the_limit_without_rejections_is_not_yet_a_refusal(tmp_path):
    f = redis(
        DEG,
        sig("rejected_connections", 0),
        sig("connected_clients", 9),
        sig("maxclients", 10),
        sig("clients_used_ratio", 0.9, DEG),
    )
    assert redis_client_limit(f, topo(tmp_path)) == []


def test_rejections_while_memory_is_full_are_not_called_a_client_limit(tmp_path):
    f = redis(
        CRIT,
        sig("rejected_connections", 3, DEG),
        sig("connected_clients", 10),
        sig("maxclients", 10),
        sig("clients_used_ratio", 1.0, CRIT),
        sig("used_memory_ratio", 0.99, CRIT),
    )
    assert redis_client_limit(f, topo(tmp_path)) == []


def test_an_unknown_maxclients_holds_nothing(tmp_path):
    f = redis(DEG, sig("rejected_connections", 3, DEG), sig("clients_used_ratio", 1.0, CRIT))
    assert redis_client_limit(f, topo(tmp_path)) == []


# -- PostgreSQL role / database CONNECTION LIMIT ---------------------------------------------


def service_logs(line: str) -> Finding:
    return Finding(
        node="payments-api/logs", skill="cloudwatch-logs", status=CRIT, summary="errors",
        signals=[], evidence=[{"kind": "log", "title": "errors", "text": line}],
    )  # fmt: skip


def postgres(*signals: Signal) -> Finding:
    return Finding(
        node="postgresql", skill="postgres", status=DEG, summary="pg", signals=[*signals]
    )


REFUSED = 'DB connection timeout: FATAL:  too many connections for role "payments"'


def test_a_refusal_backed_by_the_roles_limit_being_reached_holds(tmp_path):
    pg = postgres(
        sig("connections_used_ratio", 0.1),
        sig("connlimit_role_payments", 2),
        sig("conns_role_payments", 2, DEG),
    )
    (hit,) = postgres_connection_limit([service_logs(REFUSED), pg], topo(tmp_path))
    assert (hit.component, hit.category) == ("postgresql", cat.CLIENT_LIMIT)
    assert hit.facts == {"limit_kind": "role", "limit_name": "payments", "limit_now": 2}


def test_a_refusal_whose_limit_the_database_does_not_report_holds_nothing(tmp_path):
    pg = postgres(sig("connections_used_ratio", 0.1))
    assert postgres_connection_limit([service_logs(REFUSED), pg], topo(tmp_path)) == []


def test_a_role_with_room_under_its_limit_is_not_the_refusal(tmp_path):
    pg = postgres(sig("connlimit_role_payments", 20), sig("conns_role_payments", 3))
    assert postgres_connection_limit([service_logs(REFUSED), pg], topo(tmp_path)) == []


def test_a_role_at_its_limit_without_refusals_is_not_a_fault(tmp_path):
    pg = postgres(sig("connlimit_role_payments", 2), sig("conns_role_payments", 2, DEG))
    logs = service_logs("KeyError: 'merchant_name'")
    assert postgres_connection_limit([logs, pg], topo(tmp_path)) == []


def test_max_connections_exhausted_is_connection_exhaustion_not_a_role_limit(tmp_path):
    pg = postgres(
        sig("connections_used_ratio", 0.99, CRIT),
        sig("connlimit_role_payments", 2),
        sig("conns_role_payments", 2, DEG),
    )
    assert postgres_connection_limit([service_logs(REFUSED), pg], topo(tmp_path)) == []


def test_a_database_limit_is_named_by_its_kind(tmp_path):
    pg = postgres(sig("connlimit_database_payments", 5), sig("conns_database_payments", 5, DEG))
    line = 'FATAL:  too many connections for database "payments"'
    (hit,) = postgres_connection_limit([service_logs(line), pg], topo(tmp_path))
    assert hit.facts["limit_kind"] == "database"


def test_match_runs_the_limit_signatures(tmp_path):
    f = redis(Status.UNREACHABLE, summary="x: ConnectionError: max number of clients reached")
    assert [h.category for h in match([f], topo(tmp_path))] == [cat.CLIENT_LIMIT]
