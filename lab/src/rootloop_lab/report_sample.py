"""A realistic report of the seed's three-iteration OOM story, for previews and tests.

``rootloop report --sample`` style previews and the report tests render this
instead of running the lab: payments-api is OOM-killed, more memory does not
help, a smaller batch does but exhausts PostgreSQL's connections, a bounded
pool fixes it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import networkx as nx

from rootloop.actions.types import ApplyPatch, FileEdit, SetTaskResources
from rootloop.context import DebugContext, HistoryEntry
from rootloop.models import (
    Candidate,
    Check,
    Diagnosis,
    Evidence,
    FailedAction,
    Finding,
    LoadTestResult,
    Outcome,
    PastIncident,
    PriorContext,
    Signal,
    Status,
    Suspect,
    UiTestResult,
    VerifyResult,
)
from rootloop.report.model import RunReport, build_report
from rootloop.skills.base import Node
from rootloop.topology import LoadTestSpec, Policy, RepoSpec, Topology

T0 = datetime(2026, 11, 27, 9, 12, 4, tzinfo=UTC)
RUN_ID = "20261127-091204-7c1e"

_NODES = [
    # name, type, skill, role, component
    ("api-gateway", "http", "http-health", "upstream", "api-gateway"),
    ("frontend-app", "http", "http-health", "upstream", "frontend-app"),
    ("payments-api/health", "health", "http-health", "self", "payments-api"),
    ("payments-api/compute", "compute", "aws-ecs", "self", "payments-api"),
    ("payments-api/logs", "logs", "cloudwatch-logs", "self", "payments-api"),
    ("payments-api/ci", "ci", "github-actions", "self", "payments-api"),
    ("postgresql", "db", "postgres", "downstream", "postgresql"),
    ("redis", "cache", "redis", "downstream", "redis"),
    ("sqs-payments", "queue", "aws-sqs", "downstream", "sqs-payments"),
    ("lambda-worker", "compute", "aws-lambda", "downstream", "lambda-worker"),
    ("notification-svc", "http", "http-health", "downstream", "notification-svc"),
    ("smtp-relay", "http", "http-health", "downstream", "smtp-relay"),
]


def sample_topology() -> Topology:
    g = nx.DiGraph()
    g.add_node("payments-api", type="service")
    for comp, typ in [
        ("api-gateway", "http"),
        ("frontend-app", "http"),
        ("postgresql", "db"),
        ("redis", "cache"),
        ("sqs-payments", "queue"),
        ("lambda-worker", "compute"),
        ("notification-svc", "service"),
        ("smtp-relay", "http"),
    ]:
        g.add_node(comp, type=typ)
    g.add_edges_from(
        [
            ("frontend-app", "api-gateway"),
            ("api-gateway", "payments-api"),
            ("payments-api", "postgresql"),
            ("payments-api", "redis"),
            ("payments-api", "sqs-payments"),
            ("payments-api", "lambda-worker"),
            ("payments-api", "notification-svc"),
            ("notification-svc", "smtp-relay"),
        ]
    )
    nodes = {
        name: Node(
            name=name,
            type=typ,
            skill=skill,
            role=role,  # type: ignore[arg-type]
            component=comp,
            service="notification-svc" if comp == "smtp-relay" else "payments-api",
            timeout=5.0,
        )
        for name, typ, skill, role, comp in _NODES
    }
    return Topology(
        service="payments-api",
        environment="lower",
        policy=Policy(),
        nodes=nodes,
        graph=g,
        files={},
        repo=RepoSpec(path="/srv/lab/payments-api", default_branch="main"),
        load_test=LoadTestSpec(
            url="http://127.0.0.1:18080/payments",
            method="POST",
            body={"amount": 42},
            rate=20,
            duration=30,
            min_success_ratio=0.99,
            max_p50_ms=200,
            max_p95_ms=800,
        ),
    )


def _f(node: str, skill: str, status: Status, summary: str, ms: float, **kw: object) -> Finding:
    return Finding(
        node=node,
        skill=skill,
        status=status,
        summary=summary,
        duration_ms=ms,
        checked_at=T0 + timedelta(minutes=9),
        **kw,  # type: ignore[arg-type]
    )


def sample_findings() -> list[Finding]:
    pool_log = "\n".join(
        f"2026-11-27T09:2{i}:1{i}Z ERROR payments.batch worker-{i} "
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 100 overflow 0 reached, "
        "connection timed out, timeout 30.00"
        for i in range(6)
    )
    activity = (
        " application_name | state  | count\n"
        "------------------+--------+-------\n"
        " payments-api     | idle   |    88\n"
        " payments-api     | active |     6\n"
        " lambda-worker    | idle   |     3\n"
        "(3 rows)"
    )
    return [
        _f(
            "api-gateway",
            "http-health",
            Status.DEGRADED,
            "4.1% of /payments answers are 504 (threshold 2%)",
            212.0,
            signals=[
                Signal(name="error_ratio", value=0.041, threshold=0.02, status=Status.DEGRADED)
            ],
            suspects=[Suspect(node="payments-api", reason="504s come from its upstream")],
        ),
        _f("frontend-app", "http-health", Status.OK, "200 in 41 ms", 44.0),
        _f(
            "payments-api/health",
            "http-health",
            Status.DEGRADED,
            "/health 200 but p95 2.8 s; 12% of requests time out",
            2830.0,
            signals=[
                Signal(name="p95_ms", value=2830, unit="ms", threshold=800, status=Status.DEGRADED)
            ],
        ),
        _f(
            "payments-api/compute",
            "aws-ecs",
            Status.OK,
            "2/2 tasks running on revision 9 (memory 2048 MiB), no OOM since iteration 2",
            388.0,
        ),
        _f(
            "payments-api/logs",
            "cloudwatch-logs",
            Status.CRITICAL,
            "412 errors in 10 min: QueuePool limit of size 100 reached, connection timed out",
            901.0,
            signals=[Signal(name="errors_10m", value=412, threshold=20, status=Status.CRITICAL)],
            evidence=[Evidence(kind="log", title="first error lines", text=pool_log)],
            anomaly_started_at=T0 + timedelta(minutes=6),
            suspects=[Suspect(node="postgresql", reason="connection timeouts")],
        ),
        _f(
            "payments-api/ci",
            "github-actions",
            Status.OK,
            "run 7731 passed on a3f9c12 (deployed)",
            620.0,
        ),
        _f(
            "postgresql",
            "postgres",
            Status.CRITICAL,
            "97 of 100 connections in use; payments-api holds 94 (88 idle)",
            57.0,
            signals=[
                Signal(name="connections_used", value=97, threshold=90, status=Status.CRITICAL),
                Signal(name="max_connections", value=100),
            ],
            evidence=[
                Evidence(kind="query", title="pg_stat_activity by application", text=activity)
            ],
            anomaly_started_at=T0 + timedelta(minutes=5, seconds=40),
        ),
        _f("redis", "redis", Status.OK, "used_memory 38% of maxmemory, 0 evictions", 12.0),
        _f(
            "sqs-payments",
            "aws-sqs",
            Status.DEGRADED,
            "oldest message 340 s old (threshold 300 s); DLQ empty",
            233.0,
            signals=[Signal(name="oldest_age_s", value=340, threshold=300, status=Status.DEGRADED)],
        ),
        _f("lambda-worker", "aws-lambda", Status.OK, "0 errors, 0 throttles, p95 180 ms", 301.0),
        _f("notification-svc", "http-health", Status.OK, "200 in 18 ms", 20.0),
    ]


def _diag(node: str, category: str, summary: str, conf: float, path: list[str]) -> Diagnosis:
    return Diagnosis(
        root_cause=node, category=category, summary=summary, confidence=conf, path=path
    )


def sample_context(status: str = "healthy") -> DebugContext:
    d1 = _diag(
        "payments-api",
        "oom",
        "payments-api tasks OOM-killed (exit code 137)",
        0.9,
        ["payments-api"],
    )
    d2 = _diag(
        "payments-api",
        "oom",
        "memory leak in the batch processor: 1000-row batches held in memory",
        0.72,
        ["payments-api"],
    )
    d3 = Diagnosis(
        root_cause="postgresql",
        category="connection-exhaustion",
        summary="PostgreSQL connections exhausted by payments-api's unbounded pool after the "
        "batch fix",
        confidence=0.86,
        path=["payments-api", "postgresql"],
        evidence=[
            "postgresql: 97 of 100 connections in use, 94 held by payments-api",
            "payments-api/logs: 412 × 'QueuePool limit of size 100 reached' since 09:18",
            "errors began 20 s after postgresql's connection count crossed 90",
        ],
        candidates=[
            Candidate(
                node="postgresql",
                score=0.86,
                reasons=["connections 97/100", "earliest onset 09:17:44"],
            ),
            Candidate(node="payments-api", score=0.61, reasons=["pool timeouts in logs"]),
            Candidate(node="sqs-payments", score=0.22, reasons=["age rising after 09:19"]),
        ],
    )
    a1 = SetTaskResources(target="payments-api", cluster="lab", service="payments-api", memory=2048)
    a2 = ApplyPatch(
        target="payments-api",
        title="reduce batch size 1000 → 100",
        edits=(
            FileEdit(path="app/batch.py", search="BATCH_SIZE = 1000", replace="BATCH_SIZE = 100"),
        ),
    )
    a3 = ApplyPatch(
        target="payments-api",
        title="bound the pg connection pool to 20",
        edits=(
            FileEdit(
                path="app/db.py", search="pool_size=100", replace="pool_size=20, max_overflow=0"
            ),
        ),
    )
    history = [
        HistoryEntry(
            iteration=1,
            diagnosis="OOMKilled - exit code 137",
            action=a1.describe(),
            result="still OOMKilled at 2048",
            outcome=Outcome.SAME_FAULT,
            phase="failed",
            diagnosis_detail=d1,
            action_detail=a1,
            action_fingerprint=a1.fingerprint(),
            changed="task definition payments-api:8 (memory 1024 → 2048)",
            undo="rootloop rollback to payments-api:7",
            started_at=T0 + timedelta(seconds=5),
        ),
        HistoryEntry(
            iteration=2,
            diagnosis="memory leak in batch processor",
            action=a2.describe(),
            commit="a3f9c12e41",
            gha="pass",
            result="new error: DB connection timeout",
            outcome=Outcome.NEW_FAULT,
            phase="failed",
            diagnosis_detail=d2,
            action_detail=a2,
            action_fingerprint=a2.fingerprint(),
            started_at=T0 + timedelta(minutes=3),
        ),
        HistoryEntry(
            iteration=3,
            diagnosis="connection pool exhausted after batch fix",
            action=a3.describe(),
            commit="b7e2d45a90",
            gha="pass",
            result="fixed" if status == "healthy" else "p95 still 2.1 s",
            outcome=Outcome.FIXED if status == "healthy" else Outcome.SAME_FAULT,
            phase="done" if status == "healthy" else "failed",
            diagnosis_detail=d3,
            action_detail=a3,
            action_fingerprint=a3.fingerprint(),
            started_at=T0 + timedelta(minutes=9),
        ),
    ]
    return DebugContext(
        service="payments-api",
        iteration=3,
        history=history,
        run_id=RUN_ID,
        environment="lower",
        status=status,  # type: ignore[arg-type]
        status_reason=""
        if status == "healthy"
        else "iteration budget spent (3 of 3) with no verified fix",
        branch="rootloop/payments-api/" + RUN_ID,
        started_at=T0,
    )


def sample_report(status: str = "healthy") -> RunReport:
    """The seed's story as a finished (or, with ``status='escalated'``, stuck) run."""
    fixed = status == "healthy"
    verify = VerifyResult(
        passed=fixed,
        checks=[
            Check(name="tasks stable", passed=True, detail="2/2 running for 60 s, 0 restarts"),
            Check(
                name="error rate",
                passed=fixed,
                detail="0.3% over 60 s (threshold 2%)" if fixed else "3.8% (threshold 2%)",
            ),
            Check(name="no blocking queries", passed=True, detail="0 blocked sessions"),
            Check(
                name="root cause healthy",
                passed=fixed,
                detail="postgresql: 23 of 100 connections" if fixed else "91 of 100",
            ),
        ],
    )
    load = LoadTestResult(
        url="http://127.0.0.1:18080/payments",
        requests=600,
        successes=599 if fixed else 541,
        duration_s=30.2,
        rate=20,
        p50_ms=38.4 if fixed else 410.0,
        p95_ms=121.7 if fixed else 2140.0,
        p99_ms=240.3 if fixed else 4870.0,
        passed=fixed,
        reasons=[]
        if fixed
        else ["success ratio 90.2% is below 99.0%", "p95 2140 ms is above 800 ms"],
    )
    ui = UiTestResult(
        url="http://127.0.0.1:18081/",
        passed=fixed,
        steps=[
            Check(name="goto /", passed=True, detail="200"),
            Check(name="fill #amount = 42", passed=True),
            Check(name="click button[type=submit]", passed=True),
            Check(
                name="expect text 'Payment confirmed'",
                passed=fixed,
                detail="" if fixed else "not visible within 10 s",
            ),
        ],
        duration_s=2.4,
    )
    prior = PriorContext(
        last_summary="2026-11-20: payments-api OOM-killed during the nightly batch; escalated "
        "after raising memory did not help.",
        last_run_id="20261120-021733-91ab",
        similar=[
            PastIncident(
                run_id="20261120-021733-91ab",
                service="payments-api",
                summary="OOM-killed during nightly batch",
                root_cause="payments-api",
                category="oom",
                outcome="escalated",
                score=0.82,
            )
        ],
        failed_actions=[
            FailedAction(
                run_id="20261120-021733-91ab",
                diagnosis_key="payments-api:oom",
                fingerprint="5e1f0c2d9a7b3c11",
                description="infra fix - set ECS task memory to 4096",
            )
        ],
    )
    return build_report(
        sample_context(status),
        sample_topology(),
        sample_findings(),
        verify=verify,
        load_test=load,
        ui_test=ui,
        prior=prior,
    )
