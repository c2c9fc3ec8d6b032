"""The postgres skill and the local PostgreSQL launcher, against real servers."""

from __future__ import annotations

import asyncio
import os
import threading
from contextlib import suppress
from pathlib import Path

import psycopg
import pytest

import rootloop
from rootloop.models import Status
from rootloop.skills import registry
from rootloop.skills.base import CheckContext, Node
from rootloop.skills.postgres import PostgresSkill, describe_dsn
from rootloop.sweep import check_node
from rootloop_lab.servers.postgres import PostgresServer
from tests.fixtures.servers import app_dsn, blocking_chain, wait_until


def make_node(dsn: str, name: str = "orders-db", timeout: float = 10.0, **settings) -> Node:
    skill = registry.get("postgres")
    return Node(
        name=name,
        type="postgres",
        skill="postgres",
        role="downstream",
        component=name,
        service="orders-api",
        timeout=timeout,
        settings=skill.Settings(dsn=dsn, **settings),
    )


async def run(dsn: str, **settings) -> object:
    return await registry.get("postgres").check(make_node(dsn, **settings), CheckContext())


# -- the launcher ------------------------------------------------------------------


def test_server_is_loopback_only_unprivileged_and_has_pg_stat_statements(
    pg_server: PostgresServer,
) -> None:
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
        assert preload is not None and "pg_stat_statements" in preload[0]
        assert conn.execute("SHOW max_connections").fetchone() == ("60",)
    if pg_server.socket_dir is not None:
        assert (pg_server.socket_dir / f".s.PGSQL.{pg_server.port}").exists()
    if os.geteuid() == 0:  # PostgreSQL refuses root; the launcher must have switched users
        assert pg_server.data_dir.stat().st_uid != 0
    assert pg_server.running


def test_stop_ends_the_server_and_frees_the_port(pg_factory) -> None:
    srv = pg_factory(max_connections=10)
    dsn = srv.dsn
    srv.stop()
    assert not srv.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)


# -- the skill ---------------------------------------------------------------------


async def test_registry_finds_the_skill() -> None:
    assert isinstance(registry.get("postgres"), PostgresSkill)


async def test_healthy_database_is_ok(pg_dsn: str) -> None:
    f = await run(pg_dsn)
    assert f.status is Status.OK, f.summary
    assert f.value("blocked_sessions") == 0
    assert f.value("connections_max") == 60
    assert f.suspects == []


async def test_blocking_chain_names_the_blocker_pid_and_query(pg_dsn: str) -> None:
    with blocking_chain(pg_dsn) as (_holder, holder_pid, _):
        with psycopg.connect(pg_dsn) as probe:
            row = probe.execute(
                "SELECT xact_start FROM pg_stat_activity WHERE pid = %s", (holder_pid,)
            ).fetchone()
        f = await run(pg_dsn, blocked_min_s=0)
    assert f.status is Status.CRITICAL
    assert f.value("blocked_sessions") == 1
    assert f.value("root_blocker_pid") == holder_pid
    assert f.value("root_blocker_application") == "orders-api"
    blocker = next(e for e in f.evidence if e.title.startswith(f"blocker pid {holder_pid}"))
    assert "orders-api" in blocker.title and "idle in transaction" in blocker.title
    assert "UPDATE accounts SET balance = balance - 1" in blocker.text
    waiting = [e for e in f.evidence if f"on pid(s) {holder_pid}" in e.title]
    assert waiting and "balance + 10" in waiting[0].text
    assert "orders-api" in [s.node for s in f.suspects]
    assert row is not None and f.anomaly_started_at == row[0]


async def test_connections_held_by_lambda_worker_are_attributed(pg_factory) -> None:
    srv = pg_factory(max_connections=20)
    held: list[psycopg.Connection] = []
    try:
        for _ in range(4):
            held.append(psycopg.connect(srv.dsn_for("postgres", application_name="lambda-worker")))
        f = await run(srv.dsn)
        assert f.status is Status.OK, f.summary
        assert f.suspects == []  # 4 of 20 is no one's fault

        for _ in range(12):
            held.append(psycopg.connect(srv.dsn_for("postgres", application_name="lambda-worker")))
        f = await run(srv.dsn)
        assert f.status is Status.CRITICAL
        assert f.value("connections_used") == 17
        assert f.value("top_application") == "lambda-worker"
        assert f.signal("connections_used_ratio").status is Status.CRITICAL
        suspect = next(s for s in f.suspects if s.node == "lambda-worker")
        assert suspect.weight == pytest.approx(16 / 20)
        assert "16 of 20" in suspect.reason
        assert "lambda-worker" in f.summary

        # every slot taken: the skill cannot even connect, which is critical, not unreachable
        while True:
            try:
                held.append(psycopg.connect(srv.dsn, connect_timeout=5))
            except psycopg.OperationalError:
                break
        f = await run(srv.dsn)
        assert f.status is Status.CRITICAL
        assert "exhausted" in f.summary
    finally:
        for c in held:
            c.close()


async def test_idle_in_transaction_is_flagged(pg_dsn: str) -> None:
    with psycopg.connect(app_dsn(pg_dsn, "report-job")) as idle:
        idle.execute("SELECT 42 AS forgotten")
        pid = idle.info.backend_pid
        with psycopg.connect(pg_dsn) as probe:
            wait_until(
                probe,
                "SELECT state = 'idle in transaction' FROM pg_stat_activity WHERE pid = %s",
                (pid,),
            )
            xact_start = probe.execute(
                "SELECT xact_start FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
        patient = await run(pg_dsn, idle_in_transaction_s=3600)
        f = await run(pg_dsn, idle_in_transaction_s=0)
    assert patient.status is Status.OK
    assert f.status is Status.DEGRADED  # it blocks no one
    assert f.value("idle_in_transaction") == 1
    ev = next(e for e in f.evidence if e.title.startswith("idle in transaction"))
    assert f"pid {pid}" in ev.title and "report-job" in ev.title
    assert "SELECT 42 AS forgotten" in ev.text
    assert xact_start is not None and f.anomaly_started_at == xact_start[0]


async def test_idle_blocker_is_critical_even_below_blocked_threshold(pg_dsn: str) -> None:
    with blocking_chain(pg_dsn):
        f = await run(pg_dsn, idle_in_transaction_s=0, blocked_min_s=3600)
    assert f.signal("idle_in_transaction").status is Status.CRITICAL
    assert f.status is Status.CRITICAL


async def test_schema_verification_catches_a_missing_column(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric)")
    good = await run(pg_dsn, expect_schema={"orders": ["id", "total"]})
    bad = await run(
        pg_dsn,
        expect_schema={"orders": ["id", "total", "discount_code"], "public.customers": ["id"]},
    )
    assert good.status is Status.OK and good.value("schema_mismatches") == 0
    assert bad.status is Status.CRITICAL
    assert bad.value("schema_mismatches") == 2
    text = next(e.text for e in bad.evidence if e.kind == "config")
    assert "public.orders lacks column(s) discount_code" in text
    assert "public.customers is missing" in text


async def test_slow_statements_from_pg_stat_statements(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for _ in range(2):
            conn.execute("SELECT pg_sleep(0.3)")
    f = await run(pg_dsn, slow_statement_ms=200)
    assert f.status is Status.DEGRADED
    assert f.value("slowest_statement_mean_ms") >= 200
    assert any("pg_sleep" in e.text for e in f.evidence if e.kind == "query")


async def test_closed_port_is_unreachable(closed_port: int) -> None:
    f = await run(f"postgresql://postgres@127.0.0.1:{closed_port}/postgres", connect_timeout=2)
    assert f.status is Status.UNREACHABLE
    assert f.error and "refused" in f.error.lower()


async def test_dsn_password_never_appears_in_findings(pg_factory) -> None:
    secret = "hunter2-very-secret"
    srv = pg_factory(max_connections=10, password=secret)
    ok = await check_node(make_node(srv.dsn), CheckContext())
    wrong = await run(srv.dsn.replace(secret, "not-the-password"))
    assert ok.status is Status.OK
    assert wrong.status is Status.UNKNOWN and "authentication failed" in wrong.summary
    for f in (ok, wrong):
        dumped = f.model_dump_json()
        assert secret not in dumped and "not-the-password" not in dumped
    assert f"127.0.0.1:{srv.port}/postgres" in ok.summary


async def test_cancelled_check_leaves_no_connection_open(tmp_path: Path) -> None:
    """A server that accepts and never answers: the sweep's timeout must close our socket."""
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1024):
            pass
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        node = make_node(f"postgresql://u@127.0.0.1:{port}/db", timeout=0.5, connect_timeout=30)
        f = await check_node(node, CheckContext())
        assert f.status is Status.UNREACHABLE
        await asyncio.wait_for(closed.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()


def test_describe_dsn_keeps_only_where() -> None:
    assert describe_dsn("postgresql://app:pw@db.local:6432/orders") == "db.local:6432/orders"
    assert describe_dsn("host=10.0.0.5 dbname=x password=pw") == "10.0.0.5:5432/x"


async def test_map_settings_load_and_sweep(pg_dsn: str, redis_url: str, tmp_path: Path) -> None:
    """The documented YAML shape: dsn/url from the environment, thresholds, expect_schema."""
    from rootloop.sweep import sweep

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric)")
    (tmp_path / "rootloop.yaml").write_text(
        "service: orders-api\n"
        "downstream:\n"
        "  - name: orders-db\n"
        "    type: postgres\n"
        "    skill: postgres\n"
        "    dsn: ${PG_DSN}\n"
        "    idle_in_transaction_s: 60\n"
        "    expect_schema:\n"
        "      orders: [id, total, discount_code]\n"
        "  - name: cache\n"
        "    type: redis\n"
        "    skill: redis\n"
        "    url: ${REDIS_URL}\n"
        "    memory_critical_ratio: 0.97\n"
        "    ping_warn_ms: 5000\n"  # OK must not hang on a loaded box's PING time
    )
    topo = rootloop.load_map(
        tmp_path / "rootloop.yaml", env={"PG_DSN": pg_dsn, "REDIS_URL": redis_url}
    )
    assert topo.nodes["orders-db"].timeout == PostgresSkill.default_timeout
    db, cache = await sweep(topo.nodes.values())
    assert db.status is Status.CRITICAL and "discount_code" in db.summary
    assert cache.status is Status.OK, cache.summary
    assert pg_dsn not in db.model_dump_json()


async def test_lock_waits_that_come_and_go_are_caught_by_reading_again(pg_dsn: str) -> None:
    """A holder idle in its transaction; a client whose statement timeout cancels each wait
    and that retries half a second later. A check that starts between two waits still reports
    the blocked session and its blocker: it reads the lock waits again before judging."""
    with psycopg.connect(pg_dsn, autocommit=True) as setup:
        setup.execute("CREATE TABLE ledger (id int PRIMARY KEY, n int NOT NULL)")
        setup.execute("INSERT INTO ledger VALUES (1, 0)")
    holder = psycopg.connect(app_dsn(pg_dsn, "reporting"))
    holder.execute("SELECT * FROM ledger WHERE id = 1 FOR UPDATE")
    holder_pid = holder.info.backend_pid
    stop, between = threading.Event(), threading.Event()

    def retrying_client() -> None:
        with psycopg.connect(app_dsn(pg_dsn, "payments"), autocommit=True) as conn:
            conn.execute("SET statement_timeout = '1s'")
            while not stop.is_set():
                between.clear()
                with suppress(psycopg.errors.QueryCanceled):
                    conn.execute("UPDATE ledger SET n = n + 1 WHERE id = 1")
                between.set()
                stop.wait(0.5)

    client = threading.Thread(target=retrying_client, daemon=True)
    client.start()
    try:
        assert await asyncio.to_thread(between.wait, 60)  # one wait ended: now between two
        f = await run(pg_dsn, blocked_min_s=0.5, lock_samples=20, lock_sample_interval_s=0.25)
    finally:
        stop.set()
        holder.close()
        client.join(30)
    assert f.status is Status.CRITICAL, f.summary
    assert f.value("blocked_sessions") == 1
    assert f.value("root_blocker_pid") == holder_pid
    assert "reporting" in [s.node for s in f.suspects]
