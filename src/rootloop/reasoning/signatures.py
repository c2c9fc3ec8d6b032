"""Diagnostic signatures: patterns in findings that name a cause, not just a symptom.

Each signature reads the findings of one sweep and returns ``Hit``s: a
component, a category, how specific the evidence is (a container killed with
exit 137 says more than "HTTP 500"), the facts a runbook needs (memory, the
blocker's pid, the bad commit…) and the lines a human can check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rootloop.models import Finding, Status
from rootloop.reasoning import categories as cat
from rootloop.topology import Topology


@dataclass
class Hit:
    component: str
    category: str
    specificity: float  # 0..1: how much this evidence points at a cause
    summary: str
    facts: dict[str, Any] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    onset: datetime | None = None
    via: str = ""  # the check whose finding produced the hit


Signature = Callable[[Finding, Topology], list[Hit]]

OOM_TEXT = re.compile(
    r"OutOfMemory|OOMKilled|OOM[- ]killed|exit(?:ed)?(?: with)?(?: code)?[ :=]*137", re.I
)
POOL_TEXT = re.compile(
    r"too many clients|remaining connection slots|connection pool exhausted|"
    r"PoolTimeout|could not obtain a connection|connection timeout|"
    r"timeout expired",
    re.I,
)
SCHEMA_TEXT = re.compile(
    r"(column|relation) \"?[\w.]+\"? does not exist|UndefinedColumn|"
    r"UndefinedTable",
    re.I,
)
SHA = re.compile(r"\b[0-9a-f]{7,40}\b")


def text_of(f: Finding) -> str:
    parts = [f.summary, *(f"{s.name}={s.value}" for s in f.signals)]
    parts += [f"{e.title}\n{e.text}" for e in f.evidence]
    return "\n".join(parts)


def num(f: Finding, *names: str) -> float | None:
    for n in names:
        v = f.value(n)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                continue
    return None


def component_of(f: Finding, topo: Topology) -> str:
    node = topo.nodes.get(f.node)
    return node.component if node else f.node


def _lines(f: Finding, pattern: re.Pattern[str], limit: int = 3) -> list[str]:
    out = []
    for line in text_of(f).splitlines():
        if pattern.search(line):
            out.append(line.strip()[:240])
        if len(out) >= limit:
            break
    return out


def oom(f: Finding, topo: Topology) -> list[Hit]:
    kills = num(f, "oom_kills", "oom_killed", "exit_137")
    text_hit = f.skill in ("aws-ecs", "cloudwatch-logs") and OOM_TEXT.search(text_of(f))
    if not (kills and kills > 0) and not text_hit:
        return []
    facts: dict[str, Any] = {}
    mem = num(f, "task_memory_mb", "task_memory", "memory_mb", "memory")
    if mem:
        facts["memory"] = int(mem)
        facts["memory_x2"] = int(mem) * 2
    return [
        Hit(
            component_of(f, topo),
            cat.OOM,
            0.95 if f.skill == "aws-ecs" else 0.7,
            "OOMKilled - exit code 137" + (f" at {int(mem)} MB" if mem else ""),
            facts,
            _lines(f, OOM_TEXT),
            f.anomaly_started_at,
            f.node,
        )
    ]


def blocking_lock(f: Finding, topo: Topology) -> list[Hit]:
    if f.skill != "postgres":
        return []
    blocked = num(f, "blocked_sessions", "blocked")
    if not blocked:
        return []
    facts: dict[str, Any] = {}
    pid = num(f, "blocker_pid")
    if pid is None:
        m = re.search(r"blocker(?:'s)? pid[ =:]*(\d+)|pid (\d+)[^\n]*block", text_of(f), re.I)
        if m:
            pid = float(m.group(1) or m.group(2))
    if pid is not None:
        facts["blocker_pid"] = int(pid)
    ev = [e.text.strip()[:240] for e in f.evidence if e.kind == "query"][:2]
    return [
        Hit(
            component_of(f, topo),
            cat.BLOCKING_LOCK,
            0.9,
            f"{int(blocked)} session(s) blocked by pid {facts.get('blocker_pid', '?')}",
            facts,
            ev or [f.summary],
            f.anomaly_started_at,
            f.node,
        )
    ]


def connection_exhaustion(f: Finding, topo: Topology) -> list[Hit]:
    if f.skill != "postgres":
        return []
    ratio = num(f, "connections_used_ratio", "connection_ratio")
    if ratio is None or ratio < 0.85:
        return []
    components = set(topo.graph.nodes)
    holder = next(
        (s for s in sorted(f.suspects, key=lambda s: -s.weight) if s.node in components), None
    )
    root = holder.node if holder else component_of(f, topo)
    summary = f"PostgreSQL connections at {ratio:.0%} of max_connections"
    if holder:
        summary += f", {holder.weight:.0%} held by {holder.node}"
    return [
        Hit(
            root,
            cat.CONNECTION_EXHAUSTION,
            0.85 if holder else 0.45,
            summary,
            {"app": holder.node if holder else None},
            [f.summary],
            f.anomaly_started_at,
            f.node,
        )
    ]


def pool_errors_in_logs(f: Finding, topo: Topology) -> list[Hit]:
    if f.skill != "cloudwatch-logs" or f.status is Status.OK:
        return []
    lines = _lines(f, POOL_TEXT)
    if not lines:
        return []
    return [
        Hit(
            component_of(f, topo),
            cat.CONNECTION_EXHAUSTION,
            0.5,
            "DB connection timeouts in the service's logs",
            {},
            lines,
            f.anomaly_started_at,
            f.node,
        )
    ]


def cache_full(f: Finding, topo: Topology) -> list[Hit]:
    if f.skill not in ("redis", "aws-elasticache") or f.status is not Status.CRITICAL:
        return []
    policy = str(f.value("maxmemory_policy", "") or "")
    if "noeviction" not in (policy or text_of(f)):
        return []
    return [
        Hit(
            component_of(f, topo),
            cat.CACHE_FULL,
            0.9,
            "Redis at maxmemory under noeviction: writes fail",
            {"policy": "noeviction"},
            [f.summary],
            f.anomaly_started_at,
            f.node,
        )
    ]


def consumer_down(f: Finding, topo: Topology) -> list[Hit]:
    if f.skill != "aws-sqs" or f.status is Status.OK:
        return []
    components = set(topo.graph.nodes)
    consumer = next((s.node for s in f.suspects if s.node in components), None)
    if consumer is None:
        return []
    facts: dict[str, Any] = {"queue": f.node}
    return [
        Hit(
            consumer,
            cat.CONSUMER_DOWN,
            0.85,
            f"{f.node} is backing up: its consumer {consumer} is not consuming",
            facts,
            [f.summary],
            f.anomaly_started_at,
            f.node,
        )
    ]


def schema_drift(f: Finding, topo: Topology) -> list[Hit]:
    if f.skill == "postgres":
        missing = num(f, "schema_mismatches", "schema_missing", "missing_columns")
        if missing:
            return [
                Hit(
                    component_of(f, topo),
                    cat.SCHEMA_DRIFT,
                    0.9,
                    "the database lacks columns the service expects",
                    {},
                    [e.text[:240] for e in f.evidence][:3] or [f.summary],
                    f.anomaly_started_at,
                    f.node,
                )
            ]
        return []
    if f.skill == "cloudwatch-logs" and f.status is not Status.OK:
        lines = _lines(f, SCHEMA_TEXT)
        if lines:
            # the service's code and the database disagree: the service shipped the change
            return [
                Hit(
                    component_of(f, topo),
                    cat.SCHEMA_DRIFT,
                    0.8,
                    "queries fail on a column or table the database lacks",
                    {},
                    lines,
                    f.anomaly_started_at,
                    f.node,
                )
            ]
    return []


def dependency_down(f: Finding, topo: Topology) -> list[Hit]:
    node = topo.nodes.get(f.node)
    if (
        node is None
        or node.role != "downstream"
        or f.skill != "http-health"
        or f.status not in (Status.CRITICAL, Status.UNREACHABLE)
    ):
        return []
    return [
        Hit(
            node.component,
            cat.DEPENDENCY_DOWN,
            0.6,
            f"{node.component}: {f.summary}",
            {},
            [f.summary],
            f.anomaly_started_at,
            f.node,
        )
    ]


def throttling(f: Finding, topo: Topology) -> list[Hit]:
    throttles = num(f, "throttles")
    if f.skill != "aws-lambda" or not throttles:
        return []
    return [
        Hit(
            component_of(f, topo),
            cat.THROTTLING,
            0.7,
            f"{int(throttles)} throttled invocations",
            {},
            [f.summary],
            f.anomaly_started_at,
            f.node,
        )
    ]


def ci_failure(f: Finding, topo: Topology) -> list[Hit]:
    if f.skill != "github-actions" or f.status is not Status.CRITICAL:
        return []
    return [
        Hit(
            component_of(f, topo),
            cat.CI_FAILURE,
            0.4,
            f.summary,
            {},
            [f.summary],
            f.anomaly_started_at,
            f.node,
        )
    ]


FRAME_FILE = re.compile(r"([\w./-]+\.(?:py|java|kt|js|ts|go|rb))(?::\d+|\b)")


def bad_deploy(findings: list[Finding], topo: Topology) -> list[Hit]:
    """Errors with stack frames in a file that the deployed commit changed.

    The deployed commit comes from CI (the latest run on the default branch) or from the
    task definition (a ``GIT_SHA``-like value); the changed files come from the
    service's repository. Frames in a changed file make it a bad deploy, not a bug
    that was always there.
    """
    svc = topo.service
    mine = [f for f in findings if component_of(f, topo) == svc]
    logs = next(
        (
            f
            for f in mine
            if f.skill == "cloudwatch-logs"
            and f.status is not Status.OK
            and any(e.kind == "stack" for e in f.evidence)
        ),
        None,
    )
    if logs is None or topo.repo is None or not topo.repo.path:
        return []
    if SCHEMA_TEXT.search(text_of(logs)):
        return []  # the deploy needs a migration that did not run: schema drift, not a bug
    commit = None
    for f in mine:
        v = f.value("head_sha")
        if isinstance(v, str) and SHA.fullmatch(v):
            commit = v
            break
        m = re.search(r"GIT_SHA=([0-9a-f]{7,40})", text_of(f))
        if m:
            commit = m.group(1)
    if commit is None:
        return []
    from rootloop.platforms.local.git import Git, GitError

    git = Git(Path(topo.repo.path))
    try:
        if not git.has_commit(commit):
            git.fetch(topo.repo.remote or "origin")
        changed = git.out("show", "--name-only", "--format=", commit)
    except (GitError, OSError):
        return []
    files = [c.strip() for c in changed.splitlines() if c.strip()]
    frames = [
        m.group(1) for e in logs.evidence if e.kind == "stack" for m in FRAME_FILE.finditer(e.text)
    ]
    hit_files = sorted({f for f in files for fr in frames if fr.endswith("/" + f) or fr == f})
    if not hit_files:
        return []
    return [
        Hit(
            svc,
            cat.BAD_DEPLOY,
            0.9,
            f"errors began with the deploy of {commit[:7]}, in {', '.join(hit_files)} "
            "which it changed",
            {"bad_commit": commit},
            [e.text.strip()[:240] for e in logs.evidence if e.kind == "stack"][:2],
            logs.anomaly_started_at,
            logs.node,
        )
    ]


CrossSignature = Callable[[list[Finding], Topology], list[Hit]]
CROSS_SIGNATURES: list[CrossSignature] = [bad_deploy]

SIGNATURES: list[Signature] = [
    oom,
    blocking_lock,
    connection_exhaustion,
    pool_errors_in_logs,
    cache_full,
    consumer_down,
    schema_drift,
    dependency_down,
    throttling,
    ci_failure,
]


def match(findings: list[Finding], topo: Topology) -> list[Hit]:
    hits: list[Hit] = []
    for f in findings:
        for sig in SIGNATURES:
            hits.extend(sig(f, topo))
    for cross in CROSS_SIGNATURES:
        hits.extend(cross(findings, topo))
    return hits
