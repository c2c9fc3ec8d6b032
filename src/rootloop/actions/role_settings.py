"""The executor of ``set-role-timeout``: ``ALTER ROLE r SET <timeout> = 'Ns'``.

Why a role default: a client that leaks sessions idle in transaction keeps leaking
until its code is fixed; ``idle_in_transaction_session_timeout`` on its role makes
PostgreSQL end each such session after that long, so the leak can no longer pile up
(and the client learns of it on its next use of the session). PostgreSQL applies a
role's defaults when a session starts: sessions already open keep their old value
(ending them is ``terminate-backend``'s job, a rung of its own).

Not a schema change: ``pg_db_role_setting`` holds the default; no table, column,
index or type moves. The action carries no SQL (role, setting from a fixed list,
whole seconds); the statement is composed here with identifiers and literals quoted
by psycopg, so the schema gate, which parses any SQL an action carries, has nothing
to misread — a raw ``ALTER ROLE`` in a migration still goes to that gate, which fails
closed on it. The production gate applies: the real database is asked first.
Exactly once: the previous value is journaled before the ALTER and the setting read
back; a resumed run that finds it in force changes nothing and reports from the journal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from rootloop.actions.gates import refuse_unless_lower
from rootloop.actions.types import ActionResult, SetRoleTimeout
from rootloop.redact import Redactor
from rootloop.skills.postgres import describe_dsn
from rootloop.topology import Topology

if TYPE_CHECKING:
    from rootloop.actions.dispatch import Step

_redact = Redactor()
_READ = """
SELECT split_part(cfg, '=', 2)
FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) cfg
WHERE r.rolname = %s AND s.setdatabase = 0 AND split_part(cfg, '=', 1) = %s"""


def current_value(action: SetRoleTimeout, dsn: str) -> str | None:
    """The role's default for the setting (as PostgreSQL stores it), None when unset."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(_READ, (action.role, action.setting)).fetchone()
    return None if row is None else str(row[0])


def _wanted(action: SetRoleTimeout) -> str:
    return f"{action.seconds}s"


def _same(stored: str | None, action: SetRoleTimeout) -> bool:
    """PostgreSQL stores what was given ('5s'); a value set by hand may read '5000' (ms)."""
    if stored is None:
        return False
    return stored in (_wanted(action), str(action.seconds * 1000), f"{action.seconds * 1000}ms")


def in_force(action: SetRoleTimeout, dsn: str) -> bool:
    return _same(current_value(action, dsn), action)


def apply_set_role_timeout(
    action: SetRoleTimeout, dsn: str, topology: Topology, step: Step | None = None
) -> ActionResult:
    from rootloop.actions.datastores import refuse_production_database
    from rootloop.actions.dispatch import Step

    refuse_unless_lower(topology, action)
    step = step or Step.detached(action.kind)
    where = describe_dsn(dsn)
    what = f"{action.setting} of role {action.role}"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            refuse_production_database(topology, action, dsn, conn)  # before any change
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (action.role,)
            ).fetchone()
            if exists is None:
                return ActionResult(
                    ok=False, changed=f"no PostgreSQL role {action.role} on {where}"
                )
            row = conn.execute(_READ, (action.role, action.setting)).fetchone()
            journaled = step.journal.get("role_setting_before", "")
            before = (row[0] if row else None) if journaled == "" else journaled
            if _same(before, action):
                return ActionResult(
                    ok=True,
                    changed=f"PostgreSQL {where}: {what} is {before} already; nothing changed",
                    no_op=True,
                )
            step.before(
                "alter",
                f"setting {what} to {_wanted(action)} on {where}",
                role_setting_before=before,
            )
            conn.execute(
                sql.SQL("ALTER ROLE {} SET {} = {}").format(
                    sql.Identifier(action.role),
                    sql.Identifier(action.setting),
                    sql.Literal(_wanted(action)),
                )
            )
            after_row = conn.execute(_READ, (action.role, action.setting)).fetchone()
    except psycopg.Error as exc:
        text = _redact.text(" ".join(str(exc).split()))[:400]
        return ActionResult(ok=False, changed=f"could not change {what} on {where}: {text}")
    after = str(after_row[0]) if after_row else None
    undo = (
        f"ALTER ROLE {action.role} RESET {action.setting}"
        if before is None
        else f"ALTER ROLE {action.role} SET {action.setting} = '{before}'"
    )
    return ActionResult(
        ok=_same(after, action),
        changed=f"PostgreSQL {where}: {what} {before or 'unset'} -> {after} "
        "(applies to the role's new sessions)",
        undo=undo,
    )
