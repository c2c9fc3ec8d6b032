"""The lab's faults, each with its ground truth.

``inject(lab, name)`` applies a real fault — data, configuration, a stuck
session, a deployed commit — never a planted finding; the symptoms are what
the running system then does. Ground truth (``SCENARIOS``) says where the root
cause is, its category (``rootloop.reasoning.categories``), the fix that works,
whether rootloop may fix it alone, and which gate it must stop at.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg
from pydantic import BaseModel

from rootloop.errors import PlatformError
from rootloop.reasoning import categories as cat
from rootloop_lab import repo
from rootloop_lab.cloud import client
from rootloop_lab.deployer import deployed_sha
from rootloop_lab.layout import FUNCTION

if TYPE_CHECKING:
    from rootloop_lab.lab import Lab

SETTLEMENT_ROWS = 50_000
DEPLOY_TIMEOUT = 90.0


class Scenario(BaseModel):
    name: str
    description: str
    root_cause: str  # a node of the lab's map
    category: str
    fix: str
    fix_kinds: list[str]  # the action kinds, in order, that end it
    fixable: bool = True  # can rootloop fix it without a human?
    gate: str | None = None  # the gate it must stop at: "schema" | "production"
    iterations: int = 1  # iterations the intended fix takes
    production: bool = False  # use the production map


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            name="oom-batch",
            root_cause="payments-api",
            category=cat.OOM,
            iterations=3,
            description="a settlement backlog makes the batch (BATCH_SIZE=1000, ~640 KiB per "
            "item) outgrow its 256 MiB task: OOM-killed, exit 137",
            fix="raise memory (fails: 1000 items need >600 MiB) -> batch size 100 (OOM gone, "
            "but the unbounded pool opens 100 connections: PostgreSQL max_connections) -> "
            "bound the pool",
            fix_kinds=["set-task-resources", "apply-patch", "apply-patch"],
        ),
        Scenario(
            name="pg-blocking-lock",
            root_cause="postgresql",
            category=cat.BLOCKING_LOCK,
            description="a reporting job sits idle in transaction holding the merchants rows; "
            "every payment waits on it and hits statement_timeout",
            fix="terminate the blocking backend",
            fix_kinds=["terminate-backend"],
        ),
        Scenario(
            name="pg-connection-hog",
            root_cause="lambda-worker",
            category=cat.CONNECTION_EXHAUSTION,
            description="a config deploy sets lambda-worker's DB_POOL_SIZE=200; its eager pool "
            "takes every PostgreSQL connection and payments-api cannot connect",
            fix="set DB_POOL_SIZE back to 2 on the function (its pool shrinks); terminating "
            "its idle sessions alone does not help (the pool refills)",
            fix_kinds=["set-function-env"],
        ),
        Scenario(
            name="redis-noeviction",
            root_cause="redis",
            category=cat.CACHE_FULL,
            description="Redis reaches maxmemory under noeviction after a flood of keys "
            "without TTL; every write (payment cache, health probe) fails with OOM",
            fix="set maxmemory-policy allkeys-lru",
            fix_kinds=["set-redis-policy"],
        ),
        Scenario(
            name="queue-consumer-down",
            root_cause="lambda-worker",
            category=cat.CONSUMER_DOWN,
            description="a bad config deploy (RECEIPT_FORMAT=v3) makes every invocation of "
            "lambda-worker fail; the poller backs off, sqs-payments depth and age climb, "
            "the DLQ fills, payments-api applies backpressure",
            fix="set RECEIPT_FORMAT back to v2 on the function",
            fix_kinds=["set-function-env"],
        ),
        Scenario(
            name="bad-deploy",
            root_cause="payments-api",
            category=cat.BAD_DEPLOY,
            description="a commit that reads payment['merchant_name'] in app/receipts.py is "
            "pushed to main and deployed; every payment fails with KeyError right after",
            fix="revert the commit on a rootloop branch -> CI -> deploy",
            fix_kinds=["revert-commit"],
        ),
        Scenario(
            name="downstream-http-503",
            root_cause="notification-svc",
            category=cat.DEPENDENCY_DOWN,
            description="an empty digest notification leaves notification-svc's sender lock "
            "held; it answers 503 and every payment fails at the notify step",
            fix="restart notification-svc (force a new deployment)",
            fix_kinds=["restart"],
        ),
        Scenario(
            name="schema-change",
            root_cause="payments-api",
            category=cat.SCHEMA_DRIFT,
            description="deployed code inserts payments.fee_cents, a column the database lacks",
            fix="a migration adding the column: the schema gate must pause the run",
            fix_kinds=["run-migration"],
            gate="schema",
        ),
        Scenario(
            name="queue-poison-message",
            root_cause="lambda-worker",
            category=cat.MESSAGES_FAILING,
            description="a client enqueues a malformed message; lambda-worker fails on it "
            "until it lands in the DLQ, while every other message is consumed",
            fix="none by rootloop: the consumer runs; a human inspects the message in the DLQ "
            "(changing the consumer's configuration would fix nothing)",
            fix_kinds=[],
            fixable=False,
        ),
        Scenario(
            name="redis-maxclients",
            root_cause="redis",
            category=cat.CLIENT_LIMIT,
            description="Redis refuses new clients at maxclients; memory is nowhere near a "
            "limit, so no cache-full fix applies",
            fix="none by rootloop: it names the client limit, but Redis refuses its connection "
            "too; no runbook rung acts, it escalates with redis as its top suspect",
            fix_kinds=[],
            fixable=False,
        ),
        Scenario(
            name="production",
            root_cause="lambda-worker",
            category=cat.CONNECTION_EXHAUSTION,
            description="pg-connection-hog with the map marked environment: production",
            fix="none by rootloop: it must diagnose and refuse every action",
            fix_kinds=[],
            fixable=False,
            gate="production",
            production=True,
        ),
    ]
}


def get(name: str) -> Scenario:
    """The ground truth of any installed pack's scenario (``rootloop_lab.packs``)."""
    from rootloop_lab.packs import get as registered

    return registered(name).truth


def inject(lab: Lab, name: str, *, wait: bool = True) -> dict[str, Any]:
    """Apply the scenario's fault; returns facts about it (e.g. the bad commit).

    ``wait``: for faults that ship through CI and the deployer, return only once
    the faulty commit runs. Any installed pack's scenario (``rootloop_lab.packs``).
    """
    from rootloop_lab.packs import inject as registered

    return registered(lab, name, wait=wait)


# -- the faults ----------------------------------------------------------------


def _oom_batch(lab: Lab, state: Any, wait: bool) -> dict[str, Any]:
    with psycopg.connect(state.pg_dsn(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO payments (merchant_id, amount_cents, currency, status) "
            "SELECT 1 + g %% 2, 100 + g %% 9000, 'usd', 'settling' "
            "FROM generate_series(1, %s) g",
            (SETTLEMENT_ROWS,),
        )
    return {"settling_rows": SETTLEMENT_ROWS}


def _pg_blocking_lock(lab: Lab, state: Any, wait: bool) -> dict[str, Any]:
    log = lab.layout.logs / "reporting-job.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rootloop_lab.faults", "hold-lock", state.pg_dsn("payments")],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    lab.layout.record_pid("fault-reporting-job", proc.pid)
    deadline = time.monotonic() + 20
    with psycopg.connect(state.pg_dsn(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = "
                "'reporting-job' AND state = 'idle in transaction'"
            ).fetchone()
            if row:
                return {"blocker_pid": row[0], "helper_pid": proc.pid}
            time.sleep(0.1)
    raise PlatformError("the reporting job did not take its lock within 20s", f"see {log}")


def _set_function_env(state: Any, **changes: str) -> None:
    lam = client("lambda", state.endpoint_url)
    env = lam.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=FUNCTION, Environment={"Variables": {**env, **changes}}
    )


def _pg_connection_hog(lab: Lab, state: Any, wait: bool) -> dict[str, Any]:
    _set_function_env(state, DB_POOL_SIZE="200")
    return {"function_name": FUNCTION, "env": {"DB_POOL_SIZE": "200"}}


def _redis_noeviction(lab: Lab, state: Any, wait: bool) -> dict[str, Any]:
    import redis

    r = redis.Redis.from_url(state.redis_url, socket_timeout=10)
    try:
        used = int(r.info("memory")["used_memory"])
        limit = used + 4 * 1024 * 1024
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("maxmemory", limit)
        value = b"s" * 8192
        for i in range(10_000):  # a session import without TTLs
            try:
                r.set(f"session:{i}", value)
            except redis.exceptions.OutOfMemoryError:
                break
    finally:
        r.close()
    return {"maxmemory": limit}


def _queue_consumer_down(lab: Lab, state: Any, wait: bool) -> dict[str, Any]:
    _set_function_env(state, RECEIPT_FORMAT="v3")
    return {"function_name": FUNCTION, "env": {"RECEIPT_FORMAT": "v3"}}


_BAD_DEPLOY_EDITS = [
    ("app/receipts.py", "to merchant {payment['merchant_id']}", "to {payment['merchant_name']}"),
    ("tests/test_receipts.py", '"merchant_id": 2}', '"merchant_id": 2, "merchant_name": "globex"}'),
    ("tests/test_receipts.py", "EUR to merchant 2", "EUR to globex"),
]


def _bad_deploy(lab: Lab, state: Any, wait: bool) -> dict[str, Any]:
    sha = repo.commit_and_push(lab.layout, _BAD_DEPLOY_EDITS, "receipts: show the merchant's name")
    if wait:
        _wait_deployed(lab, state, sha)
    return {"bad_commit": sha, "file": "app/receipts.py"}


_FEE_FUNC = (
    "def fee_for(amount_cents: int) -> int:\n"
    '    """The processing fee: 2.9% + 30 cents."""\n'
    "    return round(amount_cents * 0.029) + 30\n\n\n"
)
_SCHEMA_EDITS = [
    ("app/payments.py", "currency, status) ", "currency, status, fee_cents) "),
    ("app/payments.py", "'accepted') RETURNING id", "'accepted', %s) RETURNING id"),
    (
        "app/payments.py",
        "(merchant, amount, currency),",
        "(merchant, amount, currency, fee_for(amount)),",
    ),
    ("app/payments.py", "class Rejected(Exception):", _FEE_FUNC + "class Rejected(Exception):"),
]


def _schema_change(lab: Lab, state: Any, wait: bool) -> dict[str, Any]:
    sha = repo.commit_and_push(lab.layout, _SCHEMA_EDITS, "payments: record the processing fee")
    if wait:
        _wait_deployed(lab, state, sha)
    return {"commit": sha, "missing_column": "payments.fee_cents"}


def _downstream_http_503(lab: Lab, state: Any, wait: bool) -> dict[str, Any]:
    data = json.dumps({"template": "digest", "payment_id": None}).encode()
    req = urllib.request.Request(
        f"{state.url('notification-svc')}/notify",
        data=data,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()
    return {"service": "notification-svc"}


def _wait_deployed(lab: Lab, state: Any, sha: str) -> None:
    """Until the service runs ``sha``: its task definition says so and /health reports it."""
    ecs = client("ecs", state.endpoint_url)
    deadline = time.monotonic() + DEPLOY_TIMEOUT
    while time.monotonic() < deadline:
        if deployed_sha(ecs) == sha:
            try:
                with urllib.request.urlopen(
                    f"{state.url('payments-api')}/health", timeout=3
                ) as resp:
                    body = json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                body = json.loads(exc.read() or b"{}")
            except OSError:
                body = {}
            if body.get("commit") == sha:
                return
        time.sleep(0.3)
    raise PlatformError(
        f"commit {sha[:7]} was not deployed within {DEPLOY_TIMEOUT:g}s",
        f"see {lab.layout.ci} and {lab.layout.logs / 'supervisor.log'}",
    )


def _queue_poison_message(lab: Lab, state: Any, wait: bool) -> dict[str, Any]:
    sqs = client("sqs", state.endpoint_url)
    sqs.send_message(QueueUrl=state.queue_url, MessageBody='{"receipt": "no payment id"}')
    if wait:  # the fault is in place once the message has exhausted its retries
        deadline = time.monotonic() + DEPLOY_TIMEOUT
        while time.monotonic() < deadline:
            if not _dlq_empty(state)[0]:
                break
            time.sleep(1.0)
        else:
            raise PlatformError(
                f"the malformed message did not reach the DLQ within {DEPLOY_TIMEOUT:g}s",
                f"see {lab.layout.logs / 'lambda-worker.log'}",
            )
    return {"queue": state.queue_url.rsplit("/", 1)[-1]}


def _redis_maxclients(lab: Lab, state: Any, wait: bool) -> dict[str, Any]:
    import redis

    r = redis.Redis.from_url(state.redis_url, socket_timeout=10)
    try:
        connected = int(r.info("clients")["connected_clients"])
        # this connection closes next: one fewer than now leaves no free slot
        limit = max(1, connected - 1)
        r.config_set("maxclients", limit)
    finally:
        r.close()
    return {"maxclients": limit}


_INJECTORS: dict[str, Callable[[Any, Any, bool], dict[str, Any] | None]] = {
    "oom-batch": _oom_batch,
    "pg-blocking-lock": _pg_blocking_lock,
    "pg-connection-hog": _pg_connection_hog,
    "redis-noeviction": _redis_noeviction,
    "queue-consumer-down": _queue_consumer_down,
    "bad-deploy": _bad_deploy,
    "downstream-http-503": _downstream_http_503,
    "schema-change": _schema_change,
    "queue-poison-message": _queue_poison_message,
    "redis-maxclients": _redis_maxclients,
}


# -- ground truth: each fault's own probe -------------------------------------------------
#
# Independent of rootloop's skills: each probe asks the real system, with its own client,
# whether the injected fault is gone (the blocker's session, the function's real setting,
# a write to Redis, the deployed tree…) and whether the complaint is (payments through the
# gateway succeed). The bench prints these beside what rootloop claimed.


class Truth(BaseModel):
    fixed: bool
    detail: str


PROBE_PAYMENTS = 5
PROBE_SETTLE_SECONDS = 5.0


def probe(lab: Lab, name: str) -> Truth:
    """Whether ``name``'s injected fault is truly gone, asked of the real system."""
    from rootloop_lab.packs import probe as registered

    return registered(lab, name)


def with_payments(fault_gone: Callable[[Any, Any], tuple[bool, str]]):
    """A probe that also asks the complaint: payments through the gateway succeed."""

    def probe(lab: Lab, state: Any) -> tuple[bool, str]:
        gone, why = fault_gone(lab, state)
        ok, sent = _payments_work(state)
        return gone and ok == sent, f"{why}; {ok}/{sent} payments through the gateway succeeded"

    return probe


def _payments_work(state: Any) -> tuple[int, int]:
    ok = 0
    for i in range(PROBE_PAYMENTS):
        body = json.dumps({"amount_cents": 100 + i, "merchant_id": 1 + i % 2}).encode()
        req = urllib.request.Request(
            f"{state.url('api-gateway')}/api/payments",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                ok += resp.status < 400
        except (urllib.error.HTTPError, OSError):
            pass
    return ok, PROBE_PAYMENTS


def _oom_gone(lab: Lab, state: Any) -> tuple[bool, str]:
    """The backlog drains (the batch settles rows again) and no task died of memory lately."""
    count = "SELECT count(*) FROM payments WHERE status = 'settling'"
    with psycopg.connect(state.pg_dsn(), autocommit=True, connect_timeout=5) as conn:
        before = conn.execute(count).fetchone()[0]  # type: ignore[index]
        time.sleep(PROBE_SETTLE_SECONDS * 2)
        after = conn.execute(count).fetchone()[0]  # type: ignore[index]
    ecs = client("ecs", state.endpoint_url)
    recent = time.time() - 60
    stopped = ecs.list_tasks(cluster="lab", serviceName="payments-api", desiredStatus="STOPPED")
    arns = stopped.get("taskArns", [])
    tasks = ecs.describe_tasks(cluster="lab", tasks=arns)["tasks"] if arns else []
    oom = [
        t
        for t in tasks
        if t.get("stoppedAt")
        and t["stoppedAt"].timestamp() > recent
        and any(c.get("exitCode") == 137 for c in t.get("containers", []))
    ]
    draining = after == 0 or after < before
    return draining and not oom, (
        f"settling rows {before} -> {after} in {PROBE_SETTLE_SECONDS * 2:g}s; "
        f"{len(oom)} task(s) killed with exit 137 in the last minute"
    )


def _blocker_gone(lab: Lab, state: Any) -> tuple[bool, str]:
    with psycopg.connect(state.pg_dsn(), autocommit=True, connect_timeout=5) as conn:
        blocked = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"
        ).fetchone()[0]  # type: ignore[index]
        holder = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'reporting-job' "
            "AND state = 'idle in transaction'"
        ).fetchone()[0]  # type: ignore[index]
    return not blocked and not holder, (
        f"{blocked} blocked session(s), {holder} reporting-job session(s) idle in transaction"
    )


def _function_env(state: Any) -> dict[str, str]:
    lam = client("lambda", state.endpoint_url)
    return lam.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]


def _hog_gone(lab: Lab, state: Any) -> tuple[bool, str]:
    pool = _function_env(state).get("DB_POOL_SIZE", "")
    with psycopg.connect(state.pg_dsn(), autocommit=True, connect_timeout=5) as conn:
        held = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (FUNCTION,)
        ).fetchone()[0]  # type: ignore[index]
    return pool != "200", f"{FUNCTION} DB_POOL_SIZE={pool or 'unset'}, holds {held} connection(s)"


def _cache_writable(lab: Lab, state: Any) -> tuple[bool, str]:
    import redis

    r = redis.Redis.from_url(state.redis_url, socket_timeout=5)
    try:
        policy = r.config_get("maxmemory-policy").get("maxmemory-policy")
        try:
            r.set("bench:probe", b"x" * 1024, ex=60)
            return True, f"a 1 KiB write succeeded (policy {policy})"
        except redis.exceptions.ResponseError as exc:
            return False, f"a 1 KiB write failed: {exc} (policy {policy})"
    finally:
        r.close()


def _consumer_consumes(lab: Lab, state: Any) -> tuple[bool, str]:
    """The worker's real setting is one it supports, and it keeps up with the queue.
    Messages that failed during the fault stay in the DLQ: reported, a human redrives them."""
    fmt = _function_env(state).get("RECEIPT_FORMAT", "")
    keeps_up, why = queue_keeps_up(state)
    sqs = client("sqs", state.endpoint_url)
    dlq = int(
        sqs.get_queue_attributes(
            QueueUrl=state.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    ) if state.dlq_url else 0  # fmt: skip
    supported = fmt in ("v1", "v2")
    return supported and keeps_up, (
        f"RECEIPT_FORMAT={fmt or 'unset'}; {why}; {dlq} message(s) left in the DLQ from the fault"
    )


#: one batch of the worker's event-source mapping: a queue no deeper than this, or no
#: deeper than before, is one its consumer keeps up with (an invocation takes ~1.2 s, so
#: under steady traffic the queue is rarely empty)
KEEP_UP_DEPTH = 10


def queue_keeps_up(state: Any) -> tuple[bool, str]:
    """The worker consumes (receipts are written) and the queue does not grow past a batch."""
    sqs = client("sqs", state.endpoint_url)

    def depth() -> int:
        attrs = sqs.get_queue_attributes(
            QueueUrl=state.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"])

    def receipts() -> int:
        with psycopg.connect(state.pg_dsn(), autocommit=True, connect_timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM receipts").fetchone()[0])  # type: ignore[index]

    d0, r0 = depth(), receipts()
    time.sleep(PROBE_SETTLE_SECONDS)
    d1, r1 = depth(), receipts()
    keeps_up = r1 > r0 and d1 <= max(d0, KEEP_UP_DEPTH)
    return keeps_up, (
        f"queue depth {d0} -> {d1}, {r1 - r0} receipt(s) written in {PROBE_SETTLE_SECONDS:g}s"
    )


def _dlq_empty(state: Any) -> tuple[bool, str]:
    sqs = client("sqs", state.endpoint_url)
    attrs = sqs.get_queue_attributes(
        QueueUrl=state.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    left = int(attrs["ApproximateNumberOfMessages"])
    return left == 0, f"{left} message(s) in the DLQ"


def _new_client_served(state: Any) -> tuple[bool, str]:
    import redis

    r = redis.Redis.from_url(state.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        r.ping()
        return True, "a new Redis client was served"
    except redis.RedisError as exc:
        return False, f"a new Redis client was refused: {exc}"
    finally:
        r.close()


def _bad_change_gone(lab: Lab, state: Any) -> tuple[bool, str]:
    ecs = client("ecs", state.endpoint_url)
    sha = deployed_sha(ecs)
    if not sha:
        return False, "no deployed commit"
    path, _search, bad = _BAD_DEPLOY_EDITS[0]
    shown = subprocess.run(
        ["git", "-C", str(lab.layout.origin), "show", f"{sha}:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0:
        return False, f"cannot read {path} at {sha[:7]}"
    present = bad in shown.stdout
    return (
        not present,
        f"deployed {sha[:7]}: the bad line is {'still' if present else 'not'} in {path}",
    )


def _notifier_up(lab: Lab, state: Any) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(f"{state.url('notification-svc')}/health", timeout=5) as r:
            return r.status == 200, f"notification-svc /health {r.status}"
    except urllib.error.HTTPError as exc:
        return False, f"notification-svc /health {exc.code}"
    except OSError as exc:
        return False, f"notification-svc unreachable: {exc}"


def _column_exists(lab: Lab, state: Any) -> tuple[bool, str]:
    with psycopg.connect(state.pg_dsn(), autocommit=True, connect_timeout=5) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'payments' "
            "AND column_name = 'fee_cents'"
        ).fetchone()
    return found is not None, f"payments.fee_cents {'exists' if found else 'is missing'}"


_PROBES: dict[str, Callable[[Any, Any], tuple[bool, str]]] = {
    "oom-batch": _oom_gone,
    "pg-blocking-lock": _blocker_gone,
    "pg-connection-hog": _hog_gone,
    "redis-noeviction": _cache_writable,
    "queue-consumer-down": _consumer_consumes,
    "bad-deploy": _bad_change_gone,
    "downstream-http-503": _notifier_up,
    "schema-change": _column_exists,
    "queue-poison-message": lambda lab, state: _dlq_empty(state),
    "redis-maxclients": lambda lab, state: _new_client_served(state),
}
