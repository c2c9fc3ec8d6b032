"""Diagnostic signatures: patterns in findings that name a cause, not just a symptom.

Each signature reads the findings of one sweep and returns ``Hit``s: a
component, a category, how specific the evidence is (a container killed with
exit 137 says more than "HTTP 500"), the facts a runbook needs (memory, the
blocker's pid, the bad commit…) and the lines a human can check.

A hit drives an action (its category's runbook ladder), so every signature
states its preconditions in its docstring and returns nothing unless each of
them holds in the evidence: a precondition that cannot be checked (a missing
signal, an unknown memory limit, an unknown previous deploy) counts as not
holding. The preconditions each hit met are listed in ``Hit.preconditions``.
When no signature holds, the reasoner names suspects and a human decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rootloop.models import Finding, Status
from rootloop.models.deploys import DeployDiff
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
    preconditions: list[str] = field(default_factory=list)  # what held, in words


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


def bad(f: Finding) -> bool:
    """The check itself judged the node unhealthy (``unknown`` is not a judgement)."""
    return f.status in (Status.DEGRADED, Status.CRITICAL, Status.UNREACHABLE)


def bad_signal(f: Finding, name: str) -> bool:
    s = f.signal(name)
    return s is not None and s.status in (Status.DEGRADED, Status.CRITICAL)


def _lines(f: Finding, pattern: re.Pattern[str], limit: int = 3) -> list[str]:
    out = []
    for line in text_of(f).splitlines():
        if pattern.search(line):
            out.append(line.strip()[:240])
        if len(out) >= limit:
            break
    return out


def oom(f: Finding, topo: Topology) -> list[Hit]:
    """Preconditions: the check judged the node unhealthy, and it counted containers killed
    for memory (``oom_kills`` > 0) or its task events/logs say so (OOMKilled, exit 137)."""
    if not bad(f):
        return []
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
    """Preconditions: PostgreSQL's check is unhealthy and sessions are waiting on a lock
    (``blocked_sessions`` > 0). The blocker's pid is a fact for the runbook: without it
    the terminate rung cannot be filled and is skipped."""
    if f.skill != "postgres" or not bad(f):
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
    """Preconditions: PostgreSQL's check is unhealthy and its connection-use signal is
    judged bad by the check (near ``max_connections``). The hit blames the component
    holding most connections when the check names one, else PostgreSQL itself."""
    if f.skill != "postgres" or not bad(f):
        return []
    ratio = num(f, "connections_used_ratio", "connection_ratio")
    judged = bad_signal(f, "connections_used_ratio") or bad_signal(f, "connection_ratio")
    if ratio is None or not judged:
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
    """Preconditions: the service's logs are judged unhealthy and their error lines say a
    database connection could not be had (pool timeouts, no slots left)."""
    if f.skill != "cloudwatch-logs" or not bad(f):
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
    """Preconditions, all of them: the cache check is unhealthy; a memory limit is set
    (``maxmemory`` > 0: without one nothing is "full", and an eviction policy changes
    nothing); the check judged memory use near that limit (its ``used_memory_ratio``,
    or ElastiCache's memory percentage, is bad); the policy is ``noeviction``, so
    writes fail instead of evicting. Clients refused at ``maxclients`` is not this."""
    if f.skill not in ("redis", "aws-elasticache") or not bad(f):
        return []
    policy = str(f.value("maxmemory_policy", "") or "")
    if f.skill == "redis":
        limit = num(f, "maxmemory")
        used = num(f, "used_memory")
        if not limit or limit <= 0 or used is None or not bad_signal(f, "used_memory_ratio"):
            return []
        near = f"memory {used / limit:.0%} of maxmemory {int(limit)} B"
    else:
        pct = next((s for s in f.signals if s.name.startswith("memory_pct")), None)
        if pct is None or pct.status not in (Status.DEGRADED, Status.CRITICAL):
            return []
        near = f"memory at {pct.value}% of the node's limit"
        policy = policy or ("noeviction" if "noeviction" in text_of(f) else "")
    if policy != "noeviction":
        return []
    return [
        Hit(
            component_of(f, topo),
            cat.CACHE_FULL,
            0.9,
            f"Redis at maxmemory under noeviction ({near}): writes fail",
            {"policy": "noeviction"},
            [f.summary],
            f.anomaly_started_at,
            f.node,
            ["a memory limit is set", near, "policy noeviction"],
        )
    ]


def consumer_down(f: Finding, topo: Topology, failing: frozenset[str] = frozenset()) -> list[Hit]:
    """A queue fills because its consumer stopped consuming.

    Preconditions, all of them: the queue check is unhealthy; the consumer is stalled
    (the check's ``consumer_stalled``: far fewer deleted than sent while messages wait);
    the check names the consumer, a component of the map; and there is evidence that it
    is not consuming rather than briefly behind — the queue backs up by its own judged
    signals (visible depth, its growth, the oldest message's age), or the consumer's own
    check judges it unhealthy (``failing``: components whose checks are bad, e.g. a
    function failing its invocations). Fewer deletes than sends over a short window
    alone is a consumer behind, not a consumer down. A consumer that consumes while some
    messages end in the DLQ is another fault (``rootloop.reasoning.signatures_queue``).
    """
    if f.skill != "aws-sqs" or not bad(f):
        return []
    components = set(topo.graph.nodes)
    consumer = next((s.node for s in f.suspects if s.node in components), None)
    stalled = f.value("consumer_stalled") is True
    backing_up = (  # the check's own queue signals, by name
        bad_signal(f, "depth")
        or f.value("depth_growing") is True
        or bad_signal(f, "age_of_oldest_message")
    )
    if not (stalled and consumer is not None and (backing_up or consumer in failing)):
        return []
    why = "the queue backs up" if backing_up else f"{consumer}'s own check fails"
    return [
        Hit(
            consumer,
            cat.CONSUMER_DOWN,
            0.85,
            f"{f.node} is backing up: its consumer {consumer} is not consuming",
            {"queue": f.node},
            [f.summary],
            f.anomaly_started_at,
            f.node,
            ["messages sent and not deleted (consumer stalled)", why],
        )
    ]


def consumer_down_across(findings: list[Finding], topo: Topology) -> list[Hit]:
    """``consumer_down`` for each queue, knowing which consumers' own checks are bad."""
    failing = frozenset(component_of(g, topo) for g in findings if g.skill != "aws-sqs" and bad(g))
    return [hit for f in findings for hit in consumer_down(f, topo, failing)]


def schema_drift(f: Finding, topo: Topology) -> list[Hit]:
    """Preconditions: PostgreSQL's check found columns the service expects missing, or the
    service's unhealthy logs show queries failing on a missing column or table. The
    action (a migration) always waits for a human at the schema gate."""
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
    """Preconditions: a downstream dependency's own HTTP health check fails (critical or
    unreachable); a victim's symptoms alone never name it."""
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
    """Preconditions: the function's check is unhealthy and it judged its throttles bad
    (not merely non-zero: a throttle or two is not an incident)."""
    throttles = num(f, "throttles")
    if f.skill != "aws-lambda" or not throttles or not bad(f):
        return []
    if not (bad_signal(f, "throttles") or bad_signal(f, "throttle_rate")):
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
    """Preconditions: the CI check is critical (the latest run on the branch failed). Weak
    on its own (specificity 0.4): a red build explains nothing running in production."""
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
    """Errors that a deploy brought: frames in the files that deploy changed.

    Preconditions, all of them:
    - the service's logs are unhealthy and carry stack traces (not schema errors: a
      deploy that needs a migration is schema drift);
    - the service's task definitions say which commit runs (``deployed_commit``) and
      which ran before it (``previous_commit``), and when the running one was deployed
      (``deployed_at``);
    - the errors began after that deploy (the logs' first error is not earlier), and the
      logs were read from before the deploy (else their first error may be censored);
    - the service's checks carry the diff of exactly ``previous..running``
      (``rootloop.models.deploys``: the ECS check collects it from git, and only for a
      forward deploy, the previous commit an ancestor of the running one), so the files
      are exactly what the deploy changed — never a root commit's whole tree, never
      commits deployed earlier;
    - a stack frame lies in one of those changed files.
    """
    svc = topo.service
    mine = [f for f in findings if component_of(f, topo) == svc]
    logs = next(
        (
            f
            for f in mine
            if f.skill == "cloudwatch-logs"
            and bad(f)
            and any(e.kind == "stack" for e in f.evidence)
        ),
        None,
    )
    if logs is None or topo.repo is None or not topo.repo.path:
        return []
    if SCHEMA_TEXT.search(text_of(logs)):
        return []  # the deploy needs a migration that did not run: schema drift, not a bug
    deploy = _deploy_of(mine)
    if deploy is None:
        return []
    commit, previous, deployed_at = deploy
    if logs.anomaly_started_at is None or _utc(logs.anomaly_started_at) < _utc(deployed_at):
        return []  # the errors were there before this deploy: it did not bring them
    looked_from = _when(logs.value("window_start"))
    if looked_from is None or looked_from > _utc(deployed_at):
        # the logs were not read from before the deploy: whether the service served without
        # these errors after it, and for how long, is unknown; so is the deploy's part
        return []
    diff = DeployDiff.in_findings(mine, previous, commit)
    if diff is None or not diff.files:
        return []  # no forward-deploy diff in the evidence: what the deploy changed is unknown
    files = diff.files
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
            f"which it changed since {previous[:7]}",
            {"bad_commit": commit, "previous_commit": previous},
            [e.text.strip()[:240] for e in logs.evidence if e.kind == "stack"][:2],
            logs.anomaly_started_at,
            logs.node,
            [
                f"{commit[:7]} deployed at {deployed_at:%H:%M:%S}, after {previous[:7]}",
                f"errors began at {logs.anomaly_started_at:%H:%M:%S}, after the deploy",
                f"stack frames in {', '.join(hit_files)}, changed by {previous[:7]}..{commit[:7]}",
            ],
        )
    ]


def _deploy_of(findings: list[Finding]) -> tuple[str, str, datetime] | None:
    """(running commit, previously deployed commit, deploy time) from the service's checks."""
    for f in findings:
        commit, previous, at = (
            f.value("deployed_commit"),
            f.value("previous_commit"),
            f.value("deployed_at"),
        )
        if not (isinstance(commit, str) and SHA.fullmatch(commit)):
            continue
        if not (isinstance(previous, str) and SHA.fullmatch(previous)) or previous == commit:
            return None
        when = _when(at)
        return (commit, previous, when) if when is not None else None
    return None


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        return None


CrossSignature = Callable[[list[Finding], Topology], list[Hit]]
CROSS_SIGNATURES: list[CrossSignature] = [bad_deploy, consumer_down_across]

SIGNATURES: list[Signature] = [
    oom,
    blocking_lock,
    connection_exhaustion,
    pool_errors_in_logs,
    cache_full,
    schema_drift,
    dependency_down,
    throttling,
    ci_failure,
]


def match(findings: list[Finding], topo: Topology) -> list[Hit]:
    from rootloop.reasoning import signatures_capacity as capacity
    from rootloop.reasoning import signatures_deploys as deploys
    from rootloop.reasoning import signatures_lambda as lambda_
    from rootloop.reasoning import signatures_latency as latency
    from rootloop.reasoning import signatures_limits as limits  # families in their own modules
    from rootloop.reasoning import signatures_memory as memory
    from rootloop.reasoning import signatures_queue as queue
    from rootloop.reasoning import signatures_ratelimit as ratelimit
    from rootloop.reasoning import signatures_sessions as sessions

    hits: list[Hit] = []
    families = [
        limits.SIGNATURES,
        deploys.SIGNATURES,
        lambda_.SIGNATURES,
        capacity.SIGNATURES,
        queue.SIGNATURES,
        sessions.SIGNATURES,
        ratelimit.SIGNATURES,
        memory.SIGNATURES,
    ]
    for f in findings:
        for sig in [*SIGNATURES, *(s for family in families for s in family)]:
            hits.extend(sig(f, topo))
    crosses = [*CROSS_SIGNATURES, *limits.CROSS_SIGNATURES, *latency.CROSS_SIGNATURES]
    for cross in [*crosses, *lambda_.CROSS_SIGNATURES]:
        hits.extend(cross(findings, topo))
    return hits
