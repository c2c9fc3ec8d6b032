"""A lab restored in place is the clean lab: nothing one scenario changed reaches the next.

The bench restores the running lab between scenarios instead of rebuilding it
(``rootloop_lab.snapshot``). Here one "scenario" changes everything it can reach at
once — a Redis limit and a key without TTL, a role's connection limit, an ``ALTER
SYSTEM`` setting, a column, a message in the DLQ, the function's configuration, a
stuck session holding locks, a commit on main — and each is asked for again, with
plain clients, after the restore.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
import redis

from rootloop_lab import Lab, repo, snapshot
from rootloop_lab.cloud import client
from rootloop_lab.layout import FUNCTION
from rootloop_lab.procs import alive

pytestmark = pytest.mark.lab  # starts the whole lab: not in make test-fast


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("lab"))
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


def test_state_a_scenario_changed_is_gone_after_a_restore(lab: Lab) -> None:
    st = lab.state()
    clean = snapshot.fingerprint(lab.root, st)
    main_before = repo.git("rev-parse", "main^{tree}", cwd=lab.layout.origin)

    r = redis.Redis.from_url(st.redis_url)
    r.config_set("maxclients", 9)
    r.set("left:behind", "x")
    r.close()
    with psycopg.connect(st.pg_dsn(), autocommit=True) as conn:
        conn.execute("ALTER ROLE worker CONNECTION LIMIT 1")
        conn.execute("ALTER SYSTEM SET work_mem = '9MB'")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("ALTER TABLE payments ADD COLUMN left_behind int")
    client("sqs", st.endpoint_url).send_message(QueueUrl=st.dlq_url, MessageBody="poison")
    lam = client("lambda", st.endpoint_url)
    env = lam.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=FUNCTION, Environment={"Variables": {**env, "DB_POOL_SIZE": "200"}}
    )
    facts = lab.inject("pg-blocking-lock")
    repo.commit_and_push(lab.layout, [("app/receipts.py", "def ", "def  ")], "left behind")
    dirty = snapshot.differences(clean, snapshot.fingerprint(lab.root, st))
    for part in ("redis.config.maxclients", "postgres.roles", "postgres.auto_conf",
                 "postgres.columns", "sqs-payments-dlq.messages", "DB_POOL_SIZE",
                 "postgres.stuck_sessions", "git.main_tree", "helpers"):  # fmt: skip
        assert any(part in d for d in dirty), f"the fingerprint missed {part}: {dirty}"

    restored, how = lab.restore()
    assert how == "in place"
    assert snapshot.differences(clean, snapshot.fingerprint(lab.root, restored)) == []
    r = redis.Redis.from_url(restored.redis_url)
    assert r.config_get("maxclients")["maxclients"] == "10000"
    assert r.get("left:behind") is None
    r.close()
    with psycopg.connect(restored.pg_dsn(), autocommit=True) as conn:
        assert conn.execute(
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'worker'"
        ).fetchone() == (-1,)
        assert conn.execute("SHOW work_mem").fetchone() != ("9MB",)
        assert not conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE column_name = 'left_behind'"
        ).fetchone()
        assert not conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'reporting-job'"
        ).fetchone()
    assert not alive(int(facts["helper_pid"]))
    attrs = client("sqs", restored.endpoint_url).get_queue_attributes(
        QueueUrl=restored.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    env = lam.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
    assert env["DB_POOL_SIZE"] == "2"
    assert repo.git("rev-parse", "main^{tree}", cwd=lab.layout.origin) == main_before
    assert _healthy_soon(lab)


def test_a_change_that_cannot_be_put_back_in_place_rebuilds_the_lab(lab: Lab) -> None:
    """A postmaster setting changed with ALTER SYSTEM needs a server restart to go back:
    the restore refuses, and the lab is rebuilt from nothing instead."""
    st = lab.state()
    with psycopg.connect(st.pg_dsn(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET max_connections = 7")
    restored, how = lab.restore()
    assert how.startswith("rebuilt") and "max_connections" in how
    with psycopg.connect(restored.pg_dsn(), autocommit=True) as conn:
        assert conn.execute("SHOW max_connections").fetchone() != ("7",)
    assert _healthy_soon(lab)


def _healthy_soon(lab: Lab, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.healthy():
            return True
        time.sleep(0.5)
    return False
