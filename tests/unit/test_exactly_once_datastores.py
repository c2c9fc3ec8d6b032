"""Migrations and session kills are exactly once across a kill (real PostgreSQL, Redis)."""

from __future__ import annotations

import psycopg
import pytest
from tests.fakes import Killed, kill_points
from tests.fixtures.servers import app_dsn

import rootloop
from rootloop import topology
from rootloop.actions.datastores import (
    LEDGER,
    apply_set_redis_policy,
    apply_terminate_backend,
    migration_recorded,
    run_migration,
    terminated_already,
)
from rootloop.actions.dispatch import Step
from rootloop.actions.types import RunMigration, SetRedisPolicy, TerminateBackend
from rootloop.context import DebugContext, HistoryEntry


def _lower_map() -> topology.Topology:
    """The executors judge every action against the map: a staging map with its two nodes."""
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="rootloop-map-")) / "rootloop.yaml"
    path.write_text(
        "service: svc\nenvironment: staging\ndownstream:\n"
        "  - {name: db, type: db, skill: postgres, dsn: 'postgresql://127.0.0.1:9/x'}\n"
        "  - {name: cache, type: cache, skill: redis, url: 'redis://127.0.0.1:9/0'}\n",
        encoding="utf-8",
    )
    return rootloop.load_map(path, env={})


LOWER = _lower_map()
ADD = RunMigration(target="db", name="add_fee", sql="ALTER TABLE pay ADD COLUMN fee int")


def step_for(action, ctx: DebugContext | None = None) -> Step:
    ctx = ctx or DebugContext(service="svc")
    if not ctx.history:
        ctx.iteration = 1
        ctx.history.append(HistoryEntry(iteration=1, diagnosis="d", action_detail=action))
    return Step(ctx, ctx.history[-1], lambda _m: None, action.kind)


def resumed(step: Step) -> Step:
    """The context as a new process reads it back from disk."""
    ctx = DebugContext.model_validate_json(step.ctx.model_dump_json())
    return Step(ctx, ctx.history[-1], step.progress, step.kind)


def columns(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'pay'"
        ).fetchall()
    return sorted(r[0] for r in rows)


@pytest.fixture
def table(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE pay (id int)")
    return pg_dsn


def test_migration_killed_inside_its_transaction_left_nothing_and_runs_once(table, monkeypatch):
    step = step_for(ADD)
    kill_points(monkeypatch, "step:run-migration:commit")
    with pytest.raises(Killed):
        run_migration(ADD, table, LOWER, step)
    assert columns(table) == ["id"]  # the DDL rolled back with its ledger row
    assert not migration_recorded(table, step.key)
    monkeypatch.setattr("rootloop.killpoints.hook", None)
    result = run_migration(ADD, table, LOWER, resumed(step))
    assert result.ok and columns(table) == ["fee", "id"]
    assert migration_recorded(table, step.key)


def test_migration_killed_after_its_commit_is_found_in_the_ledger_not_run_again(table, monkeypatch):
    step = step_for(ADD)
    kill_points(monkeypatch, "step:run-migration:committed")
    with pytest.raises(Killed):
        run_migration(ADD, table, LOWER, step)
    monkeypatch.setattr("rootloop.killpoints.hook", None)
    # running the DDL again would fail ("column already exists"): the ledger prevents it
    result = run_migration(ADD, table, LOWER, resumed(step))
    assert result.ok and "found in the ledger" in result.changed
    with psycopg.connect(table, autocommit=True) as conn:
        rows = conn.execute(f"SELECT key, name FROM {LEDGER}").fetchall()
    assert rows == [(step.key, "add_fee")]


def test_terminate_resumed_ends_only_the_journaled_sessions(pg_dsn, monkeypatch):
    first = psycopg.connect(app_dsn(pg_dsn, "hog"), autocommit=True)
    action = TerminateBackend(target="db", application_name="hog")
    step = step_for(action)
    kill_points(monkeypatch, "step:terminate-backend:terminate")
    with pytest.raises(Killed):
        apply_terminate_backend(action, pg_dsn, LOWER, step)
    monkeypatch.setattr("rootloop.killpoints.hook", None)
    first.close()  # the session ends on its own while rootloop is down...
    late = psycopg.connect(app_dsn(pg_dsn, "hog"), autocommit=True)  # ...a new one arrives
    try:
        again = resumed(step)
        assert terminated_already(pg_dsn, again)
        result = apply_terminate_backend(action, pg_dsn, LOWER, again)
        assert result.ok
        late.execute("SELECT 1")  # the newcomer was not chosen before the kill: spared
    finally:
        late.close()


def test_redis_change_resumed_still_reports_what_it_changed(redis_url, monkeypatch):
    action = SetRedisPolicy(target="cache", policy="allkeys-lru")
    step = step_for(action)
    hook = kill_points(monkeypatch)
    first = apply_set_redis_policy(action, redis_url, LOWER, step)
    assert "step:set-redis-policy:config-set" in hook.seen
    again = apply_set_redis_policy(action, redis_url, LOWER, resumed(step))
    assert again.changed == first.changed and "noeviction -> allkeys-lru" in again.changed
