"""Datastore actions against real servers: end a blocking backend, change Redis eviction."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest

import rootloop
from rootloop import topology
from rootloop.actions.datastores import apply_set_redis_policy, apply_terminate_backend
from rootloop.actions.types import SetRedisPolicy, TerminateBackend, parse_action
from rootloop.errors import UserError
from rootloop_lab.servers.redis import RedisServer
from tests.fixtures.servers import app_dsn, blocking_chain, wait_until


def _lower_map() -> topology.Topology:
    """What the executors judge the actions against: a staging map with their two nodes."""
    path = Path(tempfile.mkdtemp(prefix="rootloop-map-")) / "rootloop.yaml"
    path.write_text(
        "service: orders\nenvironment: staging\ndownstream:\n"
        "  - {name: orders-db, type: db, skill: postgres, dsn: 'postgresql://127.0.0.1:9/x'}\n"
        "  - {name: cache, type: cache, skill: redis, url: 'redis://127.0.0.1:9/0'}\n",
        encoding="utf-8",
    )
    return rootloop.load_map(path, env={})


LOWER = _lower_map()


def test_terminating_the_blocker_lets_the_blocked_session_proceed(pg_dsn: str) -> None:
    with blocking_chain(pg_dsn) as (holder, holder_pid, waiter_thread):
        action = parse_action(
            {"kind": "terminate-backend", "target": "orders-db", "pid": holder_pid}
        )
        assert isinstance(action, TerminateBackend)
        result = apply_terminate_backend(action, pg_dsn, LOWER)
        waiter_thread.join(10)
        assert not waiter_thread.is_alive()  # the lock is gone, the UPDATE went through
        with pytest.raises(psycopg.OperationalError):
            holder.execute("SELECT 1")
    assert result.ok, result.changed
    assert [t["pid"] for t in result.details["terminated"]] == [holder_pid]
    assert result.details["terminated"][0]["application_name"] == "orders-api"
    assert result.details["terminated"][0]["blocking"] is True
    assert "nothing to undo" in result.undo
    with psycopg.connect(pg_dsn) as conn:
        # the holder's -1 was rolled back, the waiter's +10 committed
        assert conn.execute("SELECT balance FROM accounts WHERE id = 1").fetchone() == (110,)
    assert "postgres@" not in result.changed and pg_dsn not in result.model_dump_json()


def test_blocking_only_spares_idle_sessions_that_block_no_one(pg_dsn: str) -> None:
    with blocking_chain(pg_dsn) as (_holder, holder_pid, waiter_thread):
        bystander = psycopg.connect(app_dsn(pg_dsn, "orders-api"))
        try:
            bystander.execute("SELECT 1")  # idle in transaction, but holds no contested lock
            with psycopg.connect(pg_dsn) as probe:
                wait_until(
                    probe,
                    "SELECT state = 'idle in transaction' FROM pg_stat_activity WHERE pid = %s",
                    (bystander.info.backend_pid,),
                )
            action = TerminateBackend(
                target="orders-db",
                application_name="orders-api",
                state="idle in transaction",
                blocking_only=True,
            )
            result = apply_terminate_backend(action, pg_dsn, LOWER)
            waiter_thread.join(10)
            assert bystander.execute("SELECT 2").fetchone() == (2,)  # still alive
        finally:
            bystander.close()
    assert result.ok
    assert [t["pid"] for t in result.details["terminated"]] == [holder_pid]


def test_nothing_matches_is_a_failed_result(pg_dsn: str) -> None:
    result = apply_terminate_backend(
        TerminateBackend(target="orders-db", application_name="no-such-app"), pg_dsn, LOWER
    )
    assert not result.ok
    assert "no session matches application_name 'no-such-app'" in result.changed


def test_a_selector_is_required(pg_dsn: str) -> None:
    with pytest.raises(UserError, match="pid, an application_name or a state"):
        apply_terminate_backend(TerminateBackend(target="orders-db"), pg_dsn, LOWER)


def test_unreachable_database_is_a_failed_result(closed_port: int) -> None:
    result = apply_terminate_backend(
        TerminateBackend(target="orders-db", pid=1),
        f"postgresql://app:s3cret-pass@127.0.0.1:{closed_port}/orders",
        LOWER,
    )
    assert not result.ok
    assert "could not terminate" in result.changed and "s3cret-pass" not in result.changed


def test_set_redis_policy_and_read_it_back(redis_server: RedisServer, redis_url: str) -> None:
    action = parse_action(
        {
            "kind": "set-redis-policy",
            "target": "cache",
            "policy": "allkeys-lru",
            "maxmemory": 64 * 1024 * 1024,
        }
    )
    assert isinstance(action, SetRedisPolicy)
    result = apply_set_redis_policy(action, redis_url, LOWER)
    c = redis_server.client()
    try:
        got = c.config_get("maxmemory*")
    finally:
        c.close()
    assert result.ok, result.changed
    assert got["maxmemory-policy"] == "allkeys-lru"
    assert got["maxmemory"] == str(64 * 1024 * 1024)
    assert result.details["before"] == {"maxmemory-policy": "noeviction", "maxmemory": "0"}
    assert result.undo == "CONFIG SET maxmemory-policy noeviction; CONFIG SET maxmemory 0"
    assert "noeviction -> allkeys-lru" in result.changed


def test_set_redis_policy_unreachable(closed_port: int) -> None:
    result = apply_set_redis_policy(
        SetRedisPolicy(target="cache", policy="allkeys-lru"),
        f"redis://:pw-secret-1@127.0.0.1:{closed_port}/0",
        LOWER,
    )
    assert not result.ok
    assert "could not reach" in result.changed and "pw-secret-1" not in result.changed
