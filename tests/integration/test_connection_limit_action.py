"""``set-connection-limit`` against a real PostgreSQL: a role refused at its CONNECTION
LIMIT connects again once the limit is lifted; repeating the change changes nothing."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

import rootloop
from rootloop import topology
from rootloop.actions.connection_limits import apply_set_connection_limit, limit_in_force
from rootloop.actions.types import SetConnectionLimit, parse_action


def _lower_map() -> topology.Topology:
    """The executor judges the action against the map: a staging map with its database."""
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="rootloop-map-")) / "rootloop.yaml"
    path.write_text(
        "service: orders\nenvironment: staging\ndownstream:\n"
        "  - {name: db, type: db, skill: postgres, dsn: 'postgresql://127.0.0.1:9/x'}\n",
        encoding="utf-8",
    )
    return rootloop.load_map(path, env={})


LOWER = _lower_map()


def _role_dsn(dsn: str, role: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info["user"] = role
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture
def limited_role(pg_dsn: str):
    role = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 0").format(sql.Identifier(role))
        )
    try:
        yield role
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_lifting_a_roles_limit_lets_it_connect_again(pg_dsn: str, limited_role: str) -> None:
    with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
        psycopg.connect(_role_dsn(pg_dsn, limited_role), connect_timeout=5).close()
    action = parse_action(
        {"kind": "set-connection-limit", "target": "db", "scope": "role",
         "name": limited_role, "limit": -1}
    )  # fmt: skip
    assert isinstance(action, SetConnectionLimit)
    result = apply_set_connection_limit(action, pg_dsn, LOWER)
    assert result.ok and not result.no_op, result.changed
    assert "0 -> -1" in result.changed and "CONNECTION LIMIT 0" in result.undo
    assert pg_dsn not in result.model_dump_json()
    assert limit_in_force(action, pg_dsn)
    with psycopg.connect(_role_dsn(pg_dsn, limited_role), connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    again = apply_set_connection_limit(action, pg_dsn, LOWER)
    assert again.ok and again.no_op


def test_a_role_that_does_not_exist_is_a_failed_action_not_an_error(pg_dsn: str) -> None:
    action = SetConnectionLimit(target="db", scope="role", name="no_such_role_x", limit=-1)
    result = apply_set_connection_limit(action, pg_dsn, LOWER)
    assert not result.ok and "no PostgreSQL role no_such_role_x" in result.changed


def test_the_postgres_check_reports_a_login_role_at_its_limit(
    pg_dsn: str, limited_role: str
) -> None:
    import asyncio

    from rootloop.models import Status
    from rootloop.skills import registry
    from rootloop.skills.base import CheckContext, Node

    skill = registry.get("postgres")
    node = Node(
        name="db", type="postgres", skill="postgres", role="downstream", component="db",
        service="app", timeout=10.0, settings=skill.Settings(dsn=pg_dsn),
    )  # fmt: skip
    f = asyncio.run(skill.check(node, CheckContext()))
    assert f.value(f"connlimit_role_{limited_role}") == 0
    assert f.value(f"conns_role_{limited_role}") == 0
    assert f.signal(f"conns_role_{limited_role}").status is Status.DEGRADED
    assert f"role {limited_role} at its CONNECTION LIMIT" in f.summary
    apply_set_connection_limit(
        SetConnectionLimit(target="db", scope="role", name=limited_role, limit=-1), pg_dsn, LOWER
    )
    after = asyncio.run(skill.check(node, CheckContext()))
    assert after.value(f"connlimit_role_{limited_role}") is None  # no limit set: not listed
