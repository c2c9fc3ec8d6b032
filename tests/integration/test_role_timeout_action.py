"""``set-role-timeout`` against a real PostgreSQL: a role's leaked idle-in-transaction
sessions are ended by PostgreSQL itself once the role has the timeout; the action is
configuration, not a schema change, and repeating it changes nothing."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from psycopg import sql

import rootloop
from rootloop import topology
from rootloop.actions.gates import is_schema_change
from rootloop.actions.role_settings import apply_set_role_timeout, in_force
from rootloop.actions.schema import sql_changes_schema
from rootloop.actions.types import SetRoleTimeout, parse_action


def _map(environment: str = "staging") -> topology.Topology:
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="rootloop-map-")) / "rootloop.yaml"
    path.write_text(
        f"service: orders\nenvironment: {environment}\ndownstream:\n"
        "  - {name: db, type: db, skill: postgres, dsn: 'postgresql://127.0.0.1:9/x'}\n",
        encoding="utf-8",
    )
    return rootloop.load_map(path, env={})


def _role_dsn(dsn: str, role: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info["user"] = role
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture
def role(pg_dsn: str):
    name = f"leaky_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (name,),
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_the_role_timeout_ends_a_new_leaked_session(pg_dsn: str, role: str) -> None:
    action = parse_action({"kind": "set-role-timeout", "target": "db", "role": role, "seconds": 1})
    assert isinstance(action, SetRoleTimeout)
    assert not is_schema_change(action)
    result = apply_set_role_timeout(action, pg_dsn, _map())
    assert result.ok and not result.no_op, result.changed
    assert "unset -> 1s" in result.changed and "RESET idle_in_transaction" in result.undo
    assert pg_dsn not in result.model_dump_json()
    assert in_force(action, pg_dsn)
    leaked = psycopg.connect(_role_dsn(pg_dsn, role), connect_timeout=5)
    leaked.execute("SELECT 1")  # a transaction begun and left open
    deadline = time.monotonic() + 30
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        while time.monotonic() < deadline:
            left = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)
            ).fetchone()
            if left == (0,):
                break
            time.sleep(0.2)
    assert left == (0,), "PostgreSQL did not end the idle transaction"
    leaked.close()
    again = apply_set_role_timeout(action, pg_dsn, _map())
    assert again.ok and again.no_op


def test_a_production_database_is_refused(pg_dsn: str, role: str) -> None:
    from rootloop.errors import ActionRefused

    action = SetRoleTimeout(target="db", role=role, seconds=5)
    with pytest.raises(ActionRefused):
        apply_set_role_timeout(action, pg_dsn, _map("production"))
    assert not in_force(action, pg_dsn)


def test_raw_alter_role_sql_still_goes_to_the_schema_gate() -> None:
    # fail closed: only the typed action, whose fields carry no SQL, is configuration
    assert sql_changes_schema("ALTER ROLE app SET idle_in_transaction_session_timeout = '5s'")
    sneaky = SetRoleTimeout.model_construct(
        kind="set-role-timeout", target="db", role="x; DROP TABLE t", seconds=5
    )
    assert is_schema_change(sneaky)
