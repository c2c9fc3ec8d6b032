"""postgres's session verdicts (blockers, idle transactions, long queries, the longest
transaction) as table rows give the statuses the hand-written ones gave: the old rules
are written out here and compared over a grid of sessions around every threshold."""

from __future__ import annotations

import itertools

import pytest

from rootloop.models import Status, worst
from rootloop.skills.postgres import PostgresSettings, Session, _blocking, _Report, _stuck

S = PostgresSettings(dsn="host=db")
IDLE_PID, VICTIM_PID, LONG_PID, HIDDEN_PID = 11, 12, 13, 999


def session(pid: int, state: str, **kw) -> Session:
    base = dict(usename="app", application_name=f"app-{pid}", client_addr="10.0.0.1",
                backend_start=None, xact_start=None, query_start=None, xact_age_s=None,
                query_age_s=None, state_age_s=None, wait_event_type=None,
                query="SELECT 1")  # fmt: skip
    return Session(pid=pid, state=state, **{**base, **kw})


def sessions(idle_age, idle_blocks, victim_wait, long_age, xact_age) -> list[Session]:
    out = []
    if idle_age is not None:
        out.append(session(IDLE_PID, "idle in transaction", state_age_s=idle_age,
                           xact_age_s=idle_age + 1))  # fmt: skip
    if victim_wait is not None:
        by = IDLE_PID if idle_blocks and idle_age is not None else HIDDEN_PID
        out.append(session(VICTIM_PID, "active", query_age_s=victim_wait, blocked_by=[by]))
    if long_age is not None:
        out.append(session(LONG_PID, "active", query_age_s=long_age))
    if xact_age is not None:
        out.append(session(20, "active", xact_age_s=xact_age, query_age_s=0.0))
    return out


def old_statuses(ss: list[Session], s: PostgresSettings) -> dict[str, Status]:
    blocked = [x for x in ss if x.blocked_by and (x.query_age_s or 0.0) >= s.blocked_min_s]
    blockers = {p for x in ss for p in x.blocked_by}
    idle = [x for x in ss if x.idle_in_tx and (x.state_age_s or 0) >= s.idle_in_transaction_s]
    long_q = [x for x in ss if x.state == "active" and not x.blocked_by
              and (x.query_age_s or 0) >= s.long_query_s]  # fmt: skip
    in_tx = [x.xact_age_s for x in ss if x.xact_age_s is not None]
    age = round(max(in_tx), 1) if in_tx else 0.0
    return {
        "blocked_sessions": Status.CRITICAL if blocked else Status.OK,
        "idle_in_transaction": Status.CRITICAL
        if any(x.pid in blockers for x in idle)
        else (Status.DEGRADED if idle else Status.OK),
        "long_running_queries": Status.DEGRADED if long_q else Status.OK,
        "longest_transaction_s": Status.DEGRADED
        if in_tx and age >= s.long_transaction_s
        else Status.OK,
    }


GRID = list(
    itertools.product(
        [None, 29.9, 30.0, 45.0],  # idle in transaction for (threshold 30 s)
        [False, True],  # ... and blocks the victim
        [None, 0.0, S.blocked_min_s, S.blocked_min_s + 5],  # a victim waits for
        [None, 29.9, 30.0, 60.0],  # a query runs for (threshold 30 s)
        [None, 299.9, 300.0, 301.0],  # a transaction is open for (threshold 300 s)
    )
)


@pytest.mark.parametrize("idle_blocks", [False, True])
def test_the_table_judges_sessions_as_the_old_verdicts_did(idle_blocks):
    wrong = []
    for idle_age, blocks, victim, long_age, xact in GRID:
        if blocks is not idle_blocks:
            continue
        ss = sessions(idle_age, blocks, victim, long_age, xact)
        r = _Report()
        _blocking(r, ss, S)
        _stuck(r, ss, S)
        got = {x.name: x.status for x in r.signals}
        want = old_statuses(ss, S)
        case = (idle_age, blocks, victim, long_age, xact)
        wrong += [
            f"{case} {n}: {got.get(n)} != {st}" for n, st in want.items() if got.get(n) is not st
        ]
        if worst(r.statuses) is not worst(list(want.values())):
            wrong.append(f"{case} finding: {worst(r.statuses)}")
        if any(st is not Status.OK for n, st in got.items() if n not in want):
            wrong.append(f"{case}: a signal judged off the table")
    assert not wrong, "\n".join(wrong[:20])


def test_a_server_out_of_slots_is_critical_by_the_connections_rule():
    """Refused for lack of connection slots: the ratio row at 1 (every usable slot
    taken), critical as before, now with the threshold it crossed."""
    import psycopg

    from rootloop.models.nodes import Node
    from rootloop.skills.base import CheckContext
    from rootloop.skills.postgres import PostgresSkill

    node = Node(name="db", type="db", skill="postgres", role="downstream", component="db",
                service="svc", timeout=5, settings=S)  # fmt: skip
    exc = psycopg.OperationalError("FATAL: sorry, too many clients already")
    f = PostgresSkill()._connect_failed(node, "db:5432/app", exc, CheckContext(), S)
    ratio = f.signal("connections_used_ratio")
    assert f.status is Status.CRITICAL and "slots exhausted" in f.summary
    assert (ratio.value, ratio.status, ratio.threshold) == (
        1.0,
        Status.CRITICAL,
        S.connections_critical_ratio,
    )
