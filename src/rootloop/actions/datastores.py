"""Executors for the datastore actions: end PostgreSQL sessions, change Redis eviction.

They run after the gates, and ask the refusing ones again themselves (the map's
environment, the target's own node) and then the real server (its host, database
and ``cluster_name`` must not read as production) right before the change. They
return an ``ActionResult`` in every case a platform can cause: a refused connection is
``ok=False`` with the reason, never an exception. Only a malformed action (a
``TerminateBackend`` that selects nothing, which would end every session) raises
``UserError``. Nothing here puts a DSN, URL or password in its result.

Exactly once, across a kill: the sessions to end are journaled (pid and start
time) before any is ended, and a resume ends only those of them still there —
never a new session that took a recycled pid or reconnected since. The Redis
values before the change are journaled too, so a resumed change still says what
it changed. A migration runs in ONE transaction with its row in the ledger table
``rootloop_migrations`` (keyed by run and iteration): it commits with its record
or not at all, and a resume that finds the row does not run it again.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import class_row

from rootloop.actions.gates import refuse_live, refuse_unless_lower
from rootloop.errors import PlatformError, UserError
from rootloop.models.actions import (
    ActionResult,
    BaseAction,
    RunMigration,
    SetRedisPolicy,
    TerminateBackend,
)
from rootloop.redact import Redactor
from rootloop.skills.postgres import describe_dsn
from rootloop.skills.redis import describe_url
from rootloop.topology import Topology

if TYPE_CHECKING:
    from rootloop.actions.dispatch import Step

_redact = Redactor()
_WAIT_MS = 5000  # pg_terminate_backend(pid, timeout) waits this long for each session to end


@dataclass
class _Target:
    pid: int
    application_name: str
    state: str | None
    xact_age_s: float | None
    query: str
    blocking: bool
    backend_start: str = ""


_SELECT = """
SELECT pid, coalesce(application_name, '') AS application_name, state,
       extract(epoch FROM now() - xact_start)::float8 AS xact_age_s,
       left(coalesce(query, ''), 500) AS query,
       pid IN (SELECT unnest(pg_blocking_pids(a.pid)) FROM pg_stat_activity a) AS blocking,
       backend_start::text AS backend_start
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND (%(pid)s::int IS NULL OR pid = %(pid)s::int)
  AND (%(app)s::text IS NULL OR application_name = %(app)s::text)
  AND (%(state)s::text IS NULL OR state = %(state)s::text)
ORDER BY pid"""


def _selector(action: TerminateBackend) -> str:
    parts = []
    if action.pid is not None:
        parts.append(f"pid {action.pid}")
    if action.application_name:
        parts.append(f"application_name '{action.application_name}'")
    if action.state:
        parts.append(f"state '{action.state}'")
    if action.blocking_only:
        parts.append("blocking others")
    return ", ".join(parts)


def refuse_production_database(
    topology: Topology, action: BaseAction, dsn: str, conn: psycopg.Connection
) -> None:
    """The real database, asked right before the change: its host, its name and its
    ``cluster_name`` must not read as production (and the map's gates hold)."""
    info = conninfo_to_dict(dsn)
    row = conn.execute(
        "SELECT current_database(), coalesce(current_setting('cluster_name', true), '')"
    ).fetchone()
    names = [
        ("PostgreSQL host", str(info.get("host") or "")),
        ("PostgreSQL database", str(row[0] if row else info.get("dbname") or "")),
        ("PostgreSQL cluster_name", str(row[1] if row else "")),
    ]
    refuse_live(topology, action, [(kind, name, {}) for kind, name in names if name])


def _still_there(conn: psycopg.Connection, journaled: list[dict[str, Any]]) -> list[_Target]:
    """The journaled sessions that still run: same pid AND same start (not a recycled pid)."""
    wanted = {(t["pid"], t["backend_start"]) for t in journaled}
    with conn.cursor(row_factory=class_row(_Target)) as cur:
        cur.execute(_SELECT, {"pid": None, "app": None, "state": None})
        return [t for t in cur.fetchall() if (t.pid, t.backend_start) in wanted]


def terminated_already(dsn: str, step: Step) -> bool:
    """Every session this action journaled is gone."""
    journaled = step.journal.get("sessions")
    if journaled is None:
        return False
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        return not _still_there(conn, journaled)


def apply_terminate_backend(
    action: TerminateBackend, dsn: str, topology: Topology, step: Step | None = None
) -> ActionResult:
    """``pg_terminate_backend`` on the sessions the action selects; waits until they are gone."""
    refuse_unless_lower(topology, action)
    from rootloop.actions.dispatch import Step

    step = step or Step.detached(action.kind)
    if action.pid is None and not action.application_name and not action.state:
        raise UserError(
            "terminate-backend needs a pid, an application_name or a state: without one it "
            "would end every session of the database."
        )
    where = describe_dsn(dsn)
    selector = _selector(action)
    try:
        with psycopg.connect(
            dsn, autocommit=True, connect_timeout=5, application_name="rootloop-action"
        ) as conn:
            refuse_production_database(topology, action, dsn, conn)
            journaled = step.journal.get("sessions")
            if journaled is not None:  # resumed: only the sessions chosen before the kill
                chosen = [_Target(**t) for t in journaled]
                targets = _still_there(conn, journaled)
            else:
                with conn.cursor(row_factory=class_row(_Target)) as cur:
                    cur.execute(
                        _SELECT,
                        {"pid": action.pid, "app": action.application_name, "state": action.state},
                    )
                    targets = [t for t in cur.fetchall() if t.blocking or not action.blocking_only]
                chosen = targets
            if not chosen:
                return ActionResult(
                    ok=False,
                    changed=f"nothing on {where}: no session matches {selector}",
                    details={"selector": selector, "terminated": []},
                )
            if journaled is None:
                step.before(
                    "terminate",
                    f"ending {len(targets)} session(s) on {where}",
                    sessions=[{**t.__dict__, "query": _redact.text(t.query)} for t in targets],
                )
            waits = conn.info.server_version >= 140000
            gone = {t.pid for t in targets}
            done: list[_Target] = [t for t in chosen if t.pid not in gone]
            failed: list[int] = []
            for t in targets:
                if waits:
                    row = conn.execute(
                        "SELECT pg_terminate_backend(%s, %s)", (t.pid, _WAIT_MS)
                    ).fetchone()
                else:
                    row = conn.execute("SELECT pg_terminate_backend(%s)", (t.pid,)).fetchone()
                if (row and row[0]) or _ended_meanwhile(conn, t):
                    done.append(t)  # ended: by this signal, or on its own just before it
                else:
                    failed.append(t.pid)
            if not waits:
                _wait_gone(conn, [t.pid for t in done])
    except psycopg.Error as exc:
        text = _redact.text(" ".join(str(exc).split()))[:400]
        return ActionResult(ok=False, changed=f"could not terminate sessions on {where}: {text}")
    return _terminated(where, selector, done, failed)


def _ended_meanwhile(conn: psycopg.Connection, t: _Target) -> bool:
    """The session is gone although the signal found nothing to end: it ended between the
    selection and the signal (an idle-in-transaction timeout, its client), which is the
    outcome asked for. The same pid with another start is another session: not gone."""
    row = conn.execute(
        "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND backend_start = %s",
        (t.pid, t.backend_start),
    ).fetchone()
    return row is None


def _terminated(where: str, selector: str, done: list[_Target], failed: list[int]) -> ActionResult:
    lines = [
        f"pid {t.pid} ({t.application_name or 'no application_name'}, {t.state}, "
        f"transaction open {0 if t.xact_age_s is None else t.xact_age_s:.0f}s)"
        for t in done
    ]
    changed = f"terminated {len(done)} PostgreSQL session(s) on {where}: " + "; ".join(lines)
    if failed:
        changed += f"; could not terminate pid(s) {', '.join(map(str, failed))}"
    return ActionResult(
        ok=bool(done) and not failed,
        changed=changed,
        undo=(
            "nothing to undo: the sessions' open transactions were rolled back and cannot be "
            "restored; their applications reconnect on their own (if the same sessions "
            "come back, fix the code that leaves transactions open)"
        ),
        details={
            "selector": selector,
            "terminated": [
                {
                    "pid": t.pid,
                    "application_name": t.application_name,
                    "state": t.state,
                    "xact_age_s": t.xact_age_s,
                    "blocking": t.blocking,
                    "query": _redact.text(t.query),
                }
                for t in done
            ],
            "failed": failed,
        },
    )


def _wait_gone(conn: psycopg.Connection, pids: list[int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
        ).fetchone()
        if not row or row[0] == 0:
            return
        time.sleep(0.05)


def redis_policy_in_force(action: SetRedisPolicy, url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
    try:
        now = client.config_get("maxmemory*")
    finally:
        client.close()
    return str(now.get("maxmemory-policy")) == action.policy and (
        action.maxmemory is None or str(now.get("maxmemory")) == str(action.maxmemory)
    )


def apply_set_redis_policy(
    action: SetRedisPolicy, url: str, topology: Topology, step: Step | None = None
) -> ActionResult:
    """CONFIG SET maxmemory-policy (and maxmemory); the undo restores the values read before."""
    refuse_unless_lower(topology, action)
    host = urlsplit(url).hostname or ""
    refuse_live(topology, action, [("Redis host", host, {})] if host else [])
    from rootloop.actions.dispatch import Step

    step = step or Step.detached(action.kind)
    where = describe_url(url)
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
    try:
        before = step.journal.get("redis_before") or client.config_get("maxmemory*")
        old_policy = str(before.get("maxmemory-policy", "?"))
        old_max = str(before.get("maxmemory", "?"))
        step.before(
            "config-set",
            f"setting maxmemory-policy {action.policy} on {where}",
            redis_before={"maxmemory-policy": old_policy, "maxmemory": old_max},
        )
        client.config_set("maxmemory-policy", action.policy)
        if action.maxmemory is not None:
            client.config_set("maxmemory", action.maxmemory)
        after = client.config_get("maxmemory*")
    except redis.ResponseError as exc:
        text = _redact.text(str(exc))
        hint = (
            " (CONFIG is disabled here: change the parameter group instead)"
            if ("unknown command" in text.lower())
            else ""
        )
        return ActionResult(ok=False, changed=f"could not change {where}: {text}{hint}")
    except (redis.RedisError, OSError) as exc:
        text = _redact.text(f"{type(exc).__name__}: {exc}")
        return ActionResult(ok=False, changed=f"could not reach {where}: {text}")
    finally:
        client.close()
    new_policy = str(after.get("maxmemory-policy", "?"))
    new_max = str(after.get("maxmemory", "?"))
    ok = new_policy == action.policy and (
        action.maxmemory is None or new_max == str(action.maxmemory)
    )
    undo = f"CONFIG SET maxmemory-policy {old_policy}"
    if action.maxmemory is not None:
        undo += f"; CONFIG SET maxmemory {old_max}"
    changed = f"Redis {where}: maxmemory-policy {old_policy} -> {new_policy}"
    if action.maxmemory is not None:
        changed += f", maxmemory {old_max} -> {new_max}"
    return ActionResult(
        ok=ok,
        changed=changed,
        undo=undo,
        # the values were already these: nothing changed, so nothing can be credited to it
        no_op=ok and old_policy == new_policy and (action.maxmemory is None or old_max == new_max),
        details={
            "before": {"maxmemory-policy": old_policy, "maxmemory": old_max},
            "after": {"maxmemory-policy": new_policy, "maxmemory": new_max},
        },
    )


# -- migrations -----------------------------------------------------------------------------

LEDGER = "rootloop_migrations"
_LEDGER_DDL = f"""
CREATE TABLE IF NOT EXISTS {LEDGER} (
    key text PRIMARY KEY,
    name text NOT NULL,
    sql_sha256 text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def _ledger_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (LEDGER,)).fetchone()
    return bool(row and row[0])


def migration_recorded(dsn: str, key: str) -> bool:
    """The ledger holds this key: the migration and its record committed together."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        if not _ledger_exists(conn):
            return False
        return conn.execute(f"SELECT 1 FROM {LEDGER} WHERE key = %s", (key,)).fetchone() is not None


def run_migration(
    action: RunMigration, dsn: str, topology: Topology, step: Step | None = None
) -> ActionResult:
    """Apply an approved migration and its ledger row in ONE transaction, at most once."""
    from rootloop.actions.dispatch import Step

    refuse_unless_lower(topology, action)
    step = step or Step.detached(action.kind)
    start = time.perf_counter()
    digest = hashlib.sha256(action.sql.encode()).hexdigest()
    done = ActionResult(
        ok=True,
        changed=f"applied migration {action.name} (ledger {LEDGER}, key {step.key})",
        undo="write and approve a reverse migration",
        details={"sql": action.sql, "ledger_key": step.key},
    )
    try:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=False) as conn:
            refuse_production_database(topology, action, dsn, conn)  # before any write
            conn.execute(_LEDGER_DDL)
            conn.commit()
            # one migration per key at a time, even across two processes
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (step.key,))
            if conn.execute(f"SELECT 1 FROM {LEDGER} WHERE key = %s", (step.key,)).fetchone():
                conn.rollback()
                return done.model_copy(
                    update={"changed": done.changed + ", found in the ledger after a restart"}
                )
            step.before("migrate", f"running migration {action.name} ({step.key})")
            conn.execute(action.sql)
            conn.execute(
                f"INSERT INTO {LEDGER} (key, name, sql_sha256) VALUES (%s, %s, %s)",
                (step.key, action.name, digest),
            )
            step.inside("commit")
            conn.commit()
            step.inside("committed")
    except psycopg.Error as exc:
        text = _redact.text(" ".join(str(exc).split()))[:400]
        raise PlatformError(f"migration {action.name} failed: {text}") from None
    return done.model_copy(
        update={"changed": f"{done.changed} in {time.perf_counter() - start:.2f}s"}
    )
