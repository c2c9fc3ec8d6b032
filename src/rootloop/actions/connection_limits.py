"""The executor of ``set-connection-limit``: a PostgreSQL role's or database's CONNECTION
LIMIT, changed with ``ALTER ROLE|DATABASE … CONNECTION LIMIT n``.

Not a schema change (no table, column or index moves; ``pg_roles``/``pg_database``
carry the setting), so it passes the schema gate; the production gate still applies.
Exactly once: the limit before the change is journaled before the ALTER, and the real
setting is read back — a resumed run that finds the limit already in force changes
nothing and says what it changed from the journal. Nothing here puts a DSN in a result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from rootloop.actions.gates import refuse_unless_lower
from rootloop.models.actions import ActionResult, SetConnectionLimit
from rootloop.redact import Redactor
from rootloop.skills.postgres import describe_dsn
from rootloop.topology import Topology

if TYPE_CHECKING:
    from rootloop.actions.dispatch import Step

_redact = Redactor()
_READ = {
    "role": "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s",
    "database": "SELECT datconnlimit FROM pg_database WHERE datname = %s",
}


def current_limit(action: SetConnectionLimit, dsn: str) -> int | None:
    """The limit in force now; None when the role or database does not exist."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(_READ[action.scope], (action.name,)).fetchone()
    return None if row is None else int(row[0])


def limit_in_force(action: SetConnectionLimit, dsn: str) -> bool:
    return current_limit(action, dsn) == action.limit


def apply_set_connection_limit(
    action: SetConnectionLimit, dsn: str, topology: Topology, step: Step | None = None
) -> ActionResult:
    from rootloop.actions.datastores import refuse_production_database
    from rootloop.actions.dispatch import Step

    refuse_unless_lower(topology, action)
    step = step or Step.detached(action.kind)
    where = describe_dsn(dsn)
    what = f"{action.scope} {action.name}"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            refuse_production_database(topology, action, dsn, conn)  # before any change
            row = conn.execute(_READ[action.scope], (action.name,)).fetchone()
            if row is None:
                return ActionResult(ok=False, changed=f"no PostgreSQL {what} on {where}")
            journaled = step.journal.get("connlimit_before")
            before = int(row[0] if journaled is None else journaled)
            step.before(
                "alter",
                f"setting the CONNECTION LIMIT of {what} to {action.limit} on {where}",
                connlimit_before=before,
            )
            verb = sql.SQL("ALTER ROLE" if action.scope == "role" else "ALTER DATABASE")
            conn.execute(
                sql.SQL("{} {} CONNECTION LIMIT {}").format(
                    verb, sql.Identifier(action.name), sql.Literal(action.limit)
                )
            )
            after_row = conn.execute(_READ[action.scope], (action.name,)).fetchone()
    except psycopg.Error as exc:
        text = _redact.text(" ".join(str(exc).split()))[:400]
        return ActionResult(ok=False, changed=f"could not change {what} on {where}: {text}")
    after = int(after_row[0]) if after_row else None
    return ActionResult(
        ok=after == action.limit,
        changed=f"PostgreSQL {where}: {what} CONNECTION LIMIT {before} -> {after}",
        undo=f"ALTER {action.scope.upper()} {action.name} CONNECTION LIMIT {before}",
        no_op=before == action.limit,
    )
