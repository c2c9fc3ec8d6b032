"""ECS service: tasks wanted vs running, the rollout, and why tasks stopped.

The finding carries what a diagnosis of a crash-looping service needs: the
stopped tasks' ``stoppedReason`` and container exit codes (137 with an
``OutOfMemoryError`` reason is an OOM kill: signal ``oom_kills``), how many
tasks stopped in the window (restarts), the rollout state, recent service
events, and the task definition's memory, CPU and environment (secret-looking
values masked). Where an emulator cannot carry container exit codes, the
code is read from the reason text ("exit code 137", "OutOfMemoryError").
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from botocore.exceptions import ClientError
from pydantic import Field

from rootloop.models import Evidence, Finding, Signal, Status
from rootloop.models.deploys import DeployDiff
from rootloop.models.nodes import Node, SkillSettings, node_default, repo_default
from rootloop.platforms.aws.errors import AWS_ERRORS, failure_finding
from rootloop.platforms.aws.metrics import Window
from rootloop.platforms.aws.session import AwsClients, AwsConfig, clients_for
from rootloop.redact import MASK, SENSITIVE_NAME
from rootloop.skills import ecs_capacity, verdicts
from rootloop.skills.base import BaseSkill, CheckContext
from rootloop.skills.cloudwatch_metrics import MetricAssessment, MetricSpec, assess
from rootloop.skills.deploys import GIT_TIMEOUT, no_diff
from rootloop.skills.deploys import collect as collect_diff
from rootloop.skills.verdicts import Rule, Value

OOM_EXIT = 137
_OOM_TEXT = re.compile(r"OutOfMemory|OOM[ -]?kill|out of memory|memory usage", re.I)
_EXIT_TEXT = re.compile(r"exit(?:ed)?(?: with)?(?: code| status)?[\s:=]+(-?\d+)", re.I)


class Settings(SkillSettings, AwsConfig):
    fill_from_node: ClassVar[Any] = node_default("service")
    fill_repo: ClassVar[Any] = repo_default()

    cluster: str
    service: str
    window_minutes: float = Field(default=60, gt=0, le=1440)
    max_stopped_tasks: int = Field(default=50, ge=1, le=100)
    max_events: int = Field(default=10, ge=0, le=100)
    restarts_warn: int = Field(default=3, ge=1)
    metrics: bool = True
    memory_warn_pct: float = 85.0
    memory_crit_pct: float = 95.0
    #: the service's repository: with it, a deploy's changed files become evidence
    #: (the map's ``self.repo`` for the service's own compute check)
    repo_path: str | None = None
    repo_remote: str = "origin"


@dataclass
class StoppedTask:
    arn: str
    reason: str
    stop_code: str
    stopped_at: datetime | None
    exit_codes: dict[str, int | None]
    container_reasons: dict[str, str]
    task_definition: str = ""  # the revision the task ran
    container_instance: str = ""  # the host it ran on (EC2 capacity)
    capacity_provider: str = ""

    @property
    def crashed(self) -> bool:
        """Exited non-zero on its own: not for memory, not stopped by the scheduler, not
        taken with its host (a Spot interruption, a terminated instance)."""
        return (
            self.exit_code not in (None, 0)
            and not self.oom
            and self.stop_code != "ServiceSchedulerInitiated"
            and self.stop_code not in ecs_capacity.INTERRUPTION_CODES
        )

    @property
    def oom(self) -> bool:
        texts = [self.reason, *self.container_reasons.values()]
        return OOM_EXIT in self.exit_codes.values() or any(_OOM_TEXT.search(t) for t in texts)

    @property
    def exit_code(self) -> int | None:
        codes = [c for c in self.exit_codes.values() if c]
        return codes[0] if codes else None

    def describe(self) -> str:
        codes = ", ".join(f"{n} exit {c}" for n, c in self.exit_codes.items() if c is not None)
        why = "; ".join(r for r in self.container_reasons.values() if r)
        parts = [self.reason or "(no stoppedReason)", codes, why]
        return " | ".join(p for p in parts if p)


@dataclass
class EcsReport:
    service: dict[str, Any]
    task_definition: dict[str, Any]
    stopped: list[StoppedTask] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[MetricAssessment] = field(default_factory=list)
    deploy: DeployHistory | None = None
    running: list[tuple[str, datetime | None]] = field(default_factory=list)
    capacity: ecs_capacity.CapacityView | None = None  # services on EC2 capacity


@dataclass
class DeployHistory:
    """Which commit runs, since when, and which commit ran before it.

    Why: "this deploy broke it" needs the files the deploy changed, i.e. the diff from
    the commit that ran *before* (never the whole tree of a root commit), and errors
    that began after it. Revisions that keep the commit (a memory or env change)
    are walked past: they are not a deploy of code.
    """

    commit: str
    previous: str | None = None
    deployed_at: datetime | None = None


#: environment names that carry the deployed commit, and what a commit looks like
COMMIT_ENV = re.compile(r"^(GIT_)?(SHA|COMMIT|COMMIT_SHA|REVISION)$", re.I)
COMMIT_VALUE = re.compile(r"^[0-9a-f]{7,40}$")
MAX_REVISIONS_BACK = 20


def commit_of(td: dict[str, Any]) -> str | None:
    for c in td.get("containerDefinitions", []):
        for e in c.get("environment", []):
            v = str(e.get("value", ""))
            if COMMIT_ENV.match(str(e.get("name", ""))) and COMMIT_VALUE.match(v):
                return v
    return None


def deploy_history(
    clients: AwsClients, svc: dict[str, Any], td: dict[str, Any]
) -> DeployHistory | None:
    """The running commit, the one deployed before it and when it was deployed (blocking).

    ``deployed_at`` is the creation of the oldest deployment still listed that runs the
    commit; None when it is no longer listed (then nobody can say when it began).
    """
    commit = commit_of(td)
    if commit is None:
        return None
    family, revision = td.get("family"), td.get("revision")
    previous = None
    first_rev = revision
    if family and isinstance(revision, int):
        for rev in range(revision - 1, max(0, revision - MAX_REVISIONS_BACK), -1):
            try:
                older = clients.ecs.describe_task_definition(taskDefinition=f"{family}:{rev}")
            except AWS_ERRORS:
                break
            c = commit_of(older["taskDefinition"])
            if c != commit:
                previous = c
                break
            first_rev = rev
    deployed_at: datetime | None = None
    for d in svc.get("deployments", []):
        arn = str(d.get("taskDefinition", ""))
        listed = _int(arn.rsplit(":", 1)[-1]) if ":" in arn else None
        created = d.get("createdAt")
        when = _aware(created) if created else None
        if listed is not None and first_rev is not None and listed >= first_rev and when:
            deployed_at = when if deployed_at is None or when < deployed_at else deployed_at
    return DeployHistory(commit=commit, previous=previous, deployed_at=deployed_at)


def _exit_codes(task: dict[str, Any]) -> tuple[dict[str, int | None], dict[str, str]]:
    codes: dict[str, int | None] = {}
    reasons: dict[str, str] = {}
    for c in task.get("containers", []):
        name = c.get("name", "?")
        reason = c.get("reason", "") or ""
        code = c.get("exitCode")
        texts = f"{reason} {task.get('stoppedReason', '')}"
        m = _EXIT_TEXT.search(texts)
        if not code and m:
            code = int(m.group(1))  # emulators report 0 where AWS had the real code
        elif not code and _OOM_TEXT.search(texts):
            code = OOM_EXIT  # ECS reports OutOfMemoryError with exit code 137
        codes[name] = code
        reasons[name] = reason
    return codes, reasons


def _stopped_tasks(
    clients: AwsClients, s: Settings, deployment_ids: set[str], window: Window
) -> list[StoppedTask]:
    arns: list[str] = []
    kw: dict[str, Any] = {
        "cluster": s.cluster,
        "serviceName": s.service,
        "desiredStatus": "STOPPED",
        "maxResults": 100,
    }
    while len(arns) < s.max_stopped_tasks:
        page = clients.ecs.list_tasks(**kw)
        arns.extend(page.get("taskArns", []))
        if not page.get("nextToken"):
            break
        kw["nextToken"] = page["nextToken"]
    arns = arns[: s.max_stopped_tasks]
    if not arns:
        return []
    tasks = clients.ecs.describe_tasks(cluster=s.cluster, tasks=arns).get("tasks", [])
    out = []
    for t in tasks:
        group, started_by = t.get("group", ""), t.get("startedBy", "")
        if group != f"service:{s.service}" and started_by not in deployment_ids:
            continue  # another service's task (list_tasks filters on AWS; be sure anyway)
        stopped_at = t.get("stoppedAt")
        if stopped_at is not None and stopped_at < window.start:
            continue
        if stopped_at is None:
            # Emulators leave stoppedAt unset: a task created before the window cannot
            # have been stopped by anything the window is about (e.g. before a fix).
            created = t.get("createdAt") or t.get("startedAt")
            if created is not None and created < window.start:
                continue
        codes, reasons = _exit_codes(t)
        out.append(
            StoppedTask(
                arn=t["taskArn"],
                reason=t.get("stoppedReason", "") or "",
                stop_code=t.get("stopCode", "") or "",
                stopped_at=stopped_at,
                exit_codes=codes,
                container_reasons=reasons,
                task_definition=t.get("taskDefinitionArn", "") or "",
                container_instance=t.get("containerInstanceArn", "") or "",
                capacity_provider=t.get("capacityProviderName", "") or "",
            )
        )
    return out


def _running_tasks(clients: AwsClients, s: Settings) -> list[tuple[str, datetime | None]]:
    """(task-definition revision, started at) of each running task of the service."""
    arns = clients.ecs.list_tasks(
        cluster=s.cluster, serviceName=s.service, desiredStatus="RUNNING", maxResults=100
    ).get("taskArns", [])
    if not arns:
        return []
    tasks = clients.ecs.describe_tasks(cluster=s.cluster, tasks=arns).get("tasks", [])
    return [
        (str(t.get("taskDefinitionArn", "")), _aware(t.get("startedAt") or t.get("createdAt")))
        for t in tasks
        # the service's own tasks only (emulators may ignore the serviceName filter)
        if t.get("group", "") == f"service:{s.service}"
    ]


def inspect(clients: AwsClients, s: Settings, window: Window) -> EcsReport | None:
    """Everything the finding needs, in a handful of read-only calls (blocking)."""
    resp = clients.ecs.describe_services(cluster=s.cluster, services=[s.service])
    services = resp.get("services", [])
    if not services:
        return None
    svc = services[0]
    td: dict[str, Any] = {}
    if svc.get("taskDefinition"):
        td = clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])[
            "taskDefinition"
        ]
    deployment_ids = {d.get("id", "") for d in svc.get("deployments", [])}
    report = EcsReport(
        service=svc, task_definition=td, stopped=_stopped_tasks(clients, s, deployment_ids, window)
    )
    report.deploy = deploy_history(clients, svc, td) if td else None
    report.running = _running_tasks(clients, s)
    report.events = [
        e
        for e in svc.get("events", [])
        if e.get("createdAt") is None or e["createdAt"] >= window.start
    ]
    report.events = report.events[: s.max_events]
    if ecs_capacity.on_hosts(svc):
        try:  # an extra read: without ecs:DescribeContainerInstances the rest still stands
            report.capacity = ecs_capacity.read(
                clients.ecs, s.cluster, svc, td, report.stopped, report.events
            )
        except ClientError:
            report.capacity = None
    if s.metrics:
        dims = {"ClusterName": s.cluster, "ServiceName": s.service}
        specs = [
            MetricSpec(
                namespace="AWS/ECS",
                name="MemoryUtilization",
                dimensions=dims,
                stat="Maximum",
                label="memory_utilization",
                unit="%",
                warn=s.memory_warn_pct,
                crit=s.memory_crit_pct,
            ),
            MetricSpec(
                namespace="AWS/ECS",
                name="CPUUtilization",
                dimensions=dims,
                stat="Maximum",
                label="cpu_utilization",
                unit="%",
                warn=90.0,
            ),
        ]
        # the same metric at the finest period it is kept at: its shape over the window
        # (a steady climb or a jump, rootloop.analysis.trend), not only its peak
        specs.append(memory_samples_spec(dims))
        report.metrics = assess(clients, specs, window)
    return report


MEMORY_SAMPLES = "memory_samples"


def memory_samples_spec(dims: dict[str, str]) -> MetricSpec:
    """MemoryUtilization per 10 s (high-resolution where published; AWS answers coarser
    series with their own period): informational, judged by its trend signals."""
    return MetricSpec(
        namespace="AWS/ECS",
        name="MemoryUtilization",
        dimensions=dims,
        stat="Maximum",
        label=MEMORY_SAMPLES,
        unit="%",
        period=10,
    )


def memory_trend_values(metrics: list[MetricAssessment]) -> dict[str, Value]:
    """The memory trend since the task's last restart, by signal name (reported, not judged)."""
    from rootloop.analysis.trend import memory_trend

    m = next((m for m in metrics if m.spec.signal_name == MEMORY_SAMPLES), None)
    trend = memory_trend(m.incident_times, m.incident) if m is not None else None
    if trend is None:
        return {}
    return {
        "memory_trend_samples": trend.samples,
        "memory_trend_slope_pct_per_min": trend.slope_per_min,
        "memory_trend_largest_step_share": trend.largest_step_share,
        "memory_trend_rising_share": trend.rising_share,
        "memory_trend_steady": trend.steady,
        "memory_trend_minutes_to_limit": (
            None if trend.minutes_to_limit is None else round(trend.minutes_to_limit, 1)
        ),
    }


def memory_trend_signals(metrics: list[MetricAssessment]) -> list[Signal]:
    """The memory trend as signals, as the ECS finding reports them."""
    return verdicts.assess(RULES, memory_trend_values(metrics)).signals


def _env_text(td: dict[str, Any]) -> str:
    lines = []
    for c in td.get("containerDefinitions", []):
        lines.append(
            f"container {c.get('name')}: image {c.get('image')}, memory "
            f"{c.get('memory')}, memoryReservation {c.get('memoryReservation')}, "
            f"cpu {c.get('cpu')}"
        )
        for e in c.get("environment", []):
            value = MASK if SENSITIVE_NAME.search(e.get("name", "")) else e.get("value", "")
            lines.append(f"  {e.get('name')}={value}")
        for sec in c.get("secrets", []):
            lines.append(f"  {sec.get('name')}=<from {sec.get('valueFrom', '?')}>")
    return "\n".join(lines)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


#: a service's signals (see ``rootloop.skills.verdicts``), in the order they are reported;
#: the CloudWatch metrics keep their own verdicts (thresholds and anomaly scores)
RULES: tuple[Rule, ...] = (
    Rule("desired_count"),
    # fewer tasks than wanted is degraded; none of a wanted service's tasks, critical
    Rule("running_count", "flag", on="short_of_desired", crit_on="none_running"),
    Rule("pending_count"),
    # a deployment controller without a rollout state (CODE_DEPLOY, EXTERNAL) reports none
    Rule("rollout_state", "among", bad=("FAILED",), severity=Status.CRITICAL, when="has_rollout"),
    Rule("deployments"),
    Rule("failed_tasks"),
    Rule("restarts", "above", warn="restarts_warn"),
    Rule("oom_kills", "flag", severity=Status.CRITICAL),
    Rule("crashed_tasks"),
    Rule("task_memory", unit="MiB"),
    Rule("task_cpu", unit="units"),
    Rule("task_definition"),
    Rule("deployed_commit"),
    Rule("previous_commit"),
    Rule("deployed_at"),
    # the exit code of a crash: critical for an OOM kill (137), degraded otherwise
    Rule("exit_code", "flag", on="crashed", crit_on="oom_killed"),
    Rule("crashed_on_current_revision", "flag"),
    Rule("running_on_current_revision"),
    Rule("survived_on_current_revision"),
    Rule("running_on_other_revisions"),
    Rule("previous_task_definition"),
    *ecs_capacity.RULES,
    Rule("memory_utilization"),
    Rule("cpu_utilization"),
    Rule(MEMORY_SAMPLES),  # judged by its anomaly score; its trend is reported below
    Rule("memory_trend_samples"),
    Rule("memory_trend_slope_pct_per_min", unit="%/min"),
    Rule("memory_trend_largest_step_share"),
    Rule("memory_trend_rising_share"),
    Rule("memory_trend_steady"),
    Rule("memory_trend_minutes_to_limit", unit="min"),
)


#: a service the cluster does not have (deleted, or a wrong name in the map)
MISSING_RULES = (Rule("service_exists", "among", good=(True,), severity=Status.CRITICAL),)


class EcsSkill(BaseSkill):
    name: ClassVar[str] = "aws-ecs"
    Settings: ClassVar[type[SkillSettings]] = Settings
    default_timeout: ClassVar[float] = 20.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        started = time.monotonic()
        s: Any = node.settings
        window = Window.around(ctx.window_start, ctx.window_end, s.window_minutes, 60)
        try:
            report = await ctx.run_blocking(inspect, clients_for(s), s, window)
        except AWS_ERRORS as exc:
            return failure_finding(node.name, self.name, exc)
        if report is None:
            gone = verdicts.assess(MISSING_RULES, {"service_exists": False})
            return self.finding(
                node,
                gone.status,
                f"ECS service {s.service} not found in cluster {s.cluster}",
                signals=gone.signals,
            )
        finding = self.judge(node, s, report, window)
        left = node.timeout * 0.9 - (time.monotonic() - started)
        finding.evidence.extend(await _deploy_evidence(s, report.deploy, ctx, left))
        return finding

    def judge(self, node: Node, s: Any, r: EcsReport, window: Window) -> Finding:
        svc, td = r.service, r.task_definition
        desired, running = svc.get("desiredCount", 0), svc.get("runningCount", 0)
        pending = svc.get("pendingCount", 0)
        deps = svc.get("deployments", [])
        primary = next((d for d in deps if d.get("status") == "PRIMARY"), deps[0] if deps else {})
        rollout = primary.get("rolloutState", "")
        failed_tasks = sum(int(d.get("failedTasks", 0) or 0) for d in deps)
        ooms = [t for t in r.stopped if t.oom]
        crashed = [t for t in r.stopped if t.exit_code not in (None, 0) or t.oom]
        memory, cpu = _int(td.get("memory")), _int(td.get("cpu"))

        values: dict[str, Value | Signal] = {
            "desired_count": desired,
            "running_count": running,
            "pending_count": pending,
            "rollout_state": rollout or None,
            "deployments": len(deps),
            "failed_tasks": failed_tasks,
            "restarts": len(r.stopped),
            "oom_kills": len(ooms),
            "crashed_tasks": len(crashed),
            "task_memory": memory,
            "task_cpu": cpu,
            "task_definition": svc.get("taskDefinition", ""),
        }
        if r.deploy is not None:
            at = r.deploy.deployed_at
            values["deployed_commit"] = r.deploy.commit
            values["previous_commit"] = r.deploy.previous
            values["deployed_at"] = at.isoformat() if at else None
        if crashed:
            values["exit_code"] = OOM_EXIT if ooms else crashed[0].exit_code
        values.update(_revision_values(svc, td, r))
        if r.capacity is not None:
            values.update(r.capacity.values())
        values.update({m.spec.signal_name: m.signal() for m in r.metrics if m.has_data})
        values.update(memory_trend_values(r.metrics))
        facts: dict[str, Value] = {
            "short_of_desired": running < desired,
            "none_running": desired > 0 and running == 0,
            "has_rollout": bool(rollout),
            "oom_killed": bool(ooms),
            "crashed": bool(crashed),
        }
        verdict = verdicts.assess(RULES, values, s, facts)
        status, signals = verdict.status, verdict.signals

        evidence = []
        if r.stopped:
            counts = Counter(t.describe() for t in r.stopped)
            evidence.append(
                Evidence(
                    kind="event",
                    title="stopped tasks (stoppedReason)",
                    text="\n".join(f"{n}x {d}" for d, n in counts.most_common(10)),
                )
            )
        if td:
            evidence.append(
                Evidence(
                    kind="config",
                    title=f"task definition {td.get('family')}:{td.get('revision')}",
                    text=f"memory {td.get('memory')} MiB, cpu {td.get('cpu')}\n{_env_text(td)}",
                )
            )
        if r.capacity is not None:
            evidence.extend(r.capacity.evidence())
        if r.events:
            evidence.append(
                Evidence(
                    kind="event",
                    title="service events",
                    text="\n".join(f"{e.get('createdAt')}: {e.get('message')}" for e in r.events),
                )
            )
        if deps:
            evidence.append(
                Evidence(
                    kind="text",
                    title="deployments",
                    text="\n".join(
                        f"{d.get('status')} {d.get('taskDefinition', '').rsplit('/', 1)[-1]} "
                        f"desired {d.get('desiredCount')} running {d.get('runningCount')} "
                        f"rollout {d.get('rolloutState', '-')}"
                        for d in deps
                    ),
                )
            )

        parts = [f"{running}/{desired} tasks running"]
        if pending:
            parts.append(f"{pending} pending")
        if rollout and rollout != "COMPLETED":
            parts.append(f"rollout {rollout}")
        if r.stopped:
            parts.append(f"{len(r.stopped)} task(s) stopped in the last {window.minutes:g} min")
        if ooms:
            parts.append(
                f"{len(ooms)} OOM-killed (exit {OOM_EXIT}: {ooms[0].reason or 'OOM'}) "
                f"with task memory {memory} MiB"
            )
        elif crashed:
            parts.append(f"exit code {crashed[0].exit_code}: {crashed[0].reason}")
        onset = min((t.stopped_at for t in crashed if t.stopped_at), default=None)
        if onset is None:
            onset = min((m.onset for m in r.metrics if m.onset), default=None)
        return self.finding(
            node,
            status,
            f"{s.service}: " + ", ".join(parts),
            signals=signals,
            evidence=evidence,
            anomaly_started_at=_aware(onset),
        )


def _revision_values(svc: dict[str, Any], td: dict[str, Any], r: EcsReport) -> dict[str, Value]:
    """Crashes and running tasks by revision: what tells a crash on start of the revision
    now deployed (a crash loop, a rollout that cannot finish) from an old one's.

    A task of a crash-looping revision is RUNNING for the moment between its start and its
    exit, so a running task says the revision can run only if it has outlived a crash of
    that revision: started before the latest one and still up ("survived").
    """
    current = str(svc.get("taskDefinition", ""))
    on_current = [t for t in r.stopped if t.crashed and t.task_definition == current]
    crash_times = [_aware(t.stopped_at) for t in on_current]
    latest_crash = max((t for t in crash_times if t is not None), default=None)
    mine = [started for arn, started in r.running if arn == current]
    survived = [
        started
        for started in mine
        if latest_crash is None or (started is not None and started < latest_crash)
    ]
    running_other = sum(1 for arn, _ in r.running if arn != current)
    revision = td.get("revision")
    previous = (
        f"{td.get('family')}:{revision - 1}"
        if isinstance(revision, int) and revision > 1 and td.get("family")
        else None
    )
    return {
        "crashed_on_current_revision": len(on_current),
        "running_on_current_revision": len(mine),
        "survived_on_current_revision": len(survived),
        "running_on_other_revisions": running_other,
        "previous_task_definition": previous,
    }


def _aware(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


async def _deploy_evidence(
    s: Any, deploy: DeployHistory | None, ctx: CheckContext, left_s: float
) -> list[Evidence]:
    """The files the running deploy changed (``rootloop.models.deploys``), when the
    previous commit and the repository are known; otherwise nothing.

    Git gets what is left of the check's time, split over its (at most four) calls, so a
    slow fetch costs the diff (evidence says so), never the ECS finding itself."""
    if deploy is None or not deploy.previous or not s.repo_path:
        return []
    if left_s < 1.0:
        return [no_diff(deploy.previous, deploy.commit, "no time left in the check for git")]
    got = await ctx.run_blocking(
        collect_diff,
        Path(s.repo_path),
        deploy.previous,
        deploy.commit,
        s.repo_remote,
        min(GIT_TIMEOUT, left_s / 4),
    )
    return [got.to_evidence() if isinstance(got, DeployDiff) else got]
