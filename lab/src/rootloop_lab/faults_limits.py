"""Client connection limits, played for real on the lab's PostgreSQL.

The services connect as their own roles (payments-api as ``payments``, the worker as
``worker``) to the ``payments`` database; superusers (the lab's admin, rootloop's
check) are exempt from per-role and per-database limits, as in any real server. Each
fault is a setting a maintenance script leaves behind; the symptoms are PostgreSQL's
own refusals. The probes connect as the affected role with their own client.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from rootloop.reasoning import categories as cat
from rootloop_lab.packs import PackScenario
from rootloop_lab.scenarios import Scenario, with_payments


def _admin(state: Any) -> psycopg.Connection:
    return psycopg.connect(state.pg_dsn(), autocommit=True, connect_timeout=5)


def _lock_out_role(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    """A maintenance script drained the application role (CONNECTION LIMIT 0) to run
    a backfill, and died before it restored the limit."""
    with _admin(state) as conn:
        conn.execute("ALTER ROLE payments CONNECTION LIMIT 0")
    return {"role": "payments", "connection_limit": 0}


def _cap_database(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    """A DBA capped the database at the sessions it had at that moment, to protect it
    during an incident elsewhere: every new non-superuser session is refused."""
    with _admin(state) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'payments' "
            "AND pid <> pg_backend_pid()"
        ).fetchone()
        limit = max(1, int(row[0]) if row else 1)
        conn.execute(
            sql.SQL("ALTER DATABASE payments CONNECTION LIMIT {}").format(sql.Literal(limit))
        )
    return {"database": "payments", "connection_limit": limit}


def _role_connects(role: str, database: str = "payments"):
    def probe(lab: Any, state: Any) -> tuple[bool, str]:
        try:
            with psycopg.connect(state.pg_dsn(role, database), connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            return False, f"role {role} cannot connect: {' '.join(str(exc).split())[:160]}"
        with _admin(state) as conn:
            role_limit = conn.execute(
                "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (role,)
            ).fetchone()
            db_limit = conn.execute(
                "SELECT datconnlimit FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
        return True, (
            f"role {role} connects (role limit {role_limit[0] if role_limit else '?'}, "
            f"database limit {db_limit[0] if db_limit else '?'})"
        )

    return probe


SCENARIOS = [
    PackScenario(
        Scenario(
            name="pg-role-connection-limit",
            root_cause="postgresql",
            category=cat.CLIENT_LIMIT,
            description="a maintenance script set CONNECTION LIMIT 0 on the payments role and "
            "never restored it: PostgreSQL refuses payments-api ('too many connections for "
            "role') while max_connections has plenty of room",
            fix="lift the role's CONNECTION LIMIT in the lower environment",
            fix_kinds=["set-connection-limit"],
        ),
        _lock_out_role,
        with_payments(_role_connects("payments")),
    ),
    PackScenario(
        Scenario(
            name="pg-database-connection-limit",
            root_cause="postgresql",
            category=cat.CLIENT_LIMIT,
            description="the payments database capped at the sessions it had: every new "
            "session of payments-api is refused ('too many connections for database')",
            fix="lift the database's CONNECTION LIMIT in the lower environment",
            fix_kinds=["set-connection-limit"],
        ),
        _cap_database,
        with_payments(_role_connects("payments")),
    ),
]
