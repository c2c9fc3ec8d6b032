"""aws-ecs's verdict table gives the statuses its hand-written verdict gave: the old
verdict (``EcsSkill.judge`` before the table, and ``CapacityView.signals``) is written
out here and compared over a grid of services, stopped tasks, metrics and capacity.

Two differences are deliberate, and asserted as such:
- ``running_count`` is critical (not degraded) when none of a wanted service's tasks
  runs: the finding was already critical for it, and now a signal says why;
- the 10-second memory samples (``memory_samples``) are reported as a signal when they
  have data: their anomaly verdict already counted in the finding without one.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from rootloop.models import Signal, Status, worst
from rootloop.models.nodes import Node
from rootloop.platforms.aws.metrics import Window
from rootloop.skills import ecs_capacity
from rootloop.skills.aws_ecs import MEMORY_SAMPLES, EcsReport, EcsSkill, StoppedTask
from rootloop.skills.cloudwatch_metrics import MetricAssessment, MetricSpec

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CURRENT = "arn:aws:ecs:us-east-1:1:task-definition/api:7"
OLD = "arn:aws:ecs:us-east-1:1:task-definition/api:6"


def task(code: int | None, td: str = CURRENT, stop: str = "EssentialContainerExited", why=""):
    return StoppedTask(
        arn=f"arn:task/{code}-{td[-1]}-{stop}",
        reason=why or f"Essential container exited (exit code {code})",
        stop_code=stop,
        stopped_at=NOW - timedelta(minutes=5),
        exit_codes={"app": code},
        container_reasons={"app": why},
        task_definition=td,
    )


STOPPED = {
    "none": [],
    "one crash": [task(1)],
    "one oom": [task(137, why="OutOfMemoryError: Container killed")],
    "three scheduled": [task(0, stop="ServiceSchedulerInitiated") for _ in range(3)],
    "old crash": [task(2, td=OLD)],
    "spot": [task(143, stop="SpotInterruption")],
}


def metric(label: str, peak: float | None, status: Status) -> MetricAssessment:
    spec = MetricSpec(namespace="AWS/ECS", name="MemoryUtilization", label=label, unit="%")
    return MetricAssessment(
        spec=spec,
        incident=[] if peak is None else [peak],
        incident_times=[] if peak is None else [NOW],
        status=status,
    )


METRICS = {
    "none": [],
    "no data": [metric("memory_utilization", None, Status.OK)],
    "memory ok": [metric("memory_utilization", 40, Status.OK)],
    "memory critical": [metric("memory_utilization", 97, Status.CRITICAL)],
    "samples abnormal": [
        metric("memory_utilization", 60, Status.OK),
        metric(MEMORY_SAMPLES, 60, Status.DEGRADED),
    ],
}


def capacity(kind: str) -> ecs_capacity.CapacityView | None:
    if kind == "none":
        return None
    view = ecs_capacity.CapacityView(placement=[], strategy=[])
    if kind == "interrupted":
        view.interrupted = [ecs_capacity.Interruption("t", "h", "spot", "SpotInterruption")]
    if kind == "unplaced":
        view.unplaced = ["(service api) was unable to place a task"]
    return view


def report(desired, running, rollout, stopped, metrics, cap) -> EcsReport:
    svc = {
        "desiredCount": desired,
        "runningCount": running,
        "pendingCount": 0,
        "taskDefinition": CURRENT,
        "deployments": [{"status": "PRIMARY", "rolloutState": rollout}] if rollout else [],
    }
    return EcsReport(
        service=svc,
        task_definition={"family": "api", "revision": 7, "memory": "512", "cpu": "256"},
        stopped=list(STOPPED[stopped]),
        metrics=list(METRICS[metrics]),
        capacity=capacity(cap),
    )


def old_verdict(r: EcsReport, restarts_warn: int) -> tuple[Status, dict[str, Status]]:
    """The hand-written verdict, as it was (statuses only)."""
    svc = r.service
    desired, running = svc.get("desiredCount", 0), svc.get("runningCount", 0)
    deps = svc.get("deployments", [])
    primary = next((d for d in deps if d.get("status") == "PRIMARY"), deps[0] if deps else {})
    rollout = primary.get("rolloutState", "")
    ooms = [t for t in r.stopped if t.oom]
    crashed = [t for t in r.stopped if t.exit_code not in (None, 0) or t.oom]
    statuses = [Status.OK]
    if desired > 0 and running == 0:
        statuses.append(Status.CRITICAL)
    elif running < desired:
        statuses.append(Status.DEGRADED)
    if ooms or rollout == "FAILED":
        statuses.append(Status.CRITICAL)
    if len(r.stopped) >= restarts_warn or crashed:
        statuses.append(Status.DEGRADED)
    statuses.extend(m.status for m in r.metrics if m.has_data)
    signals = {
        "running_count": Status.OK if running >= desired else Status.DEGRADED,
        "rollout_state": Status.CRITICAL if rollout == "FAILED" else Status.OK,
        "restarts": Status.DEGRADED if len(r.stopped) >= restarts_warn else Status.OK,
        "oom_kills": Status.CRITICAL if ooms else Status.OK,
        "crashed_tasks": Status.OK,
        "desired_count": Status.OK,
    }
    if ooms:
        signals["exit_code"] = Status.CRITICAL
    elif crashed:
        signals["exit_code"] = Status.DEGRADED
    on_current = [t for t in r.stopped if t.crashed and t.task_definition == CURRENT]
    signals["crashed_on_current_revision"] = Status.DEGRADED if on_current else Status.OK
    status = worst(statuses)
    if r.capacity is not None:
        cap = {
            "interrupted_tasks": Status.DEGRADED if r.capacity.interrupted else Status.OK,
            "placement_failures": Status.DEGRADED if r.capacity.unplaced else Status.OK,
        }
        signals.update(cap)
        status = worst([status, *cap.values()])
    for m in r.metrics:
        if m.has_data and m.spec.signal_name != MEMORY_SAMPLES:
            signals[m.spec.signal_name] = m.status
    return status, signals


GRID = list(
    itertools.product(
        [0, 2],
        [0, 1, 2],
        ["", "COMPLETED", "FAILED", "IN_PROGRESS"],
        list(METRICS),
        ["none", "interrupted", "unplaced"],
    )
)
SKILL = EcsSkill()
SETTINGS = SKILL.Settings.model_validate({"cluster": "c", "service": "api"})
NODE = Node(name="api", type="ecs", skill="aws-ecs", role="self", component="api",
            service="api", timeout=20, settings=SETTINGS)  # fmt: skip
WINDOW = Window.around(NOW - timedelta(minutes=30), NOW, 60, 60)


def mismatches(desired, running, rollout, stopped, metrics, cap) -> list[str]:
    r = report(desired, running, rollout, stopped, metrics, cap)
    f = SKILL.judge(NODE, SETTINGS, r, WINDOW)
    want_status, want = old_verdict(r, SETTINGS.restarts_warn)
    if desired > 0 and running == 0:
        want["running_count"] = Status.CRITICAL  # deliberate: the finding's reason, as a signal
    got = {sig.name: sig.status for sig in f.signals}
    bad = [f"{n}: {got.get(n)} != {st}" for n, st in want.items() if got.get(n) is not st]
    samples = got.get(MEMORY_SAMPLES)
    if samples is not (Status.DEGRADED if metrics == "samples abnormal" else None):
        bad.append(f"memory_samples: {samples}")  # deliberate: shown when it has data
    if f.status is not want_status:
        bad.append(f"finding: {f.status} != {want_status}")
    judged = {*want, MEMORY_SAMPLES}
    bad += [f"{n} judged {st} off the table" for n, st in got.items()
            if n not in judged and st is not Status.OK]  # fmt: skip
    # the finding is as bad as its worst signal: nothing judged off the table
    if f.status is not worst(list(got.values())):
        bad.append(f"finding {f.status} is not its worst signal")
    return [f"{(desired, running, rollout, stopped, metrics, cap)}: {b}" for b in bad]


@pytest.mark.parametrize("stopped", list(STOPPED))
def test_the_table_judges_as_the_old_verdict_did(stopped):
    """360 services per kind of stopped tasks (2,160 in all)."""
    wrong = [m for case in GRID for m in mismatches(*case[:3], stopped, *case[3:])]
    assert not wrong, "\n".join(wrong[:20])


def test_no_signal_of_the_ecs_table_is_dropped():
    """The signals the reasoners read keep their names (signatures read them)."""
    r = report(2, 1, "FAILED", "one oom", "memory critical", "unplaced")
    skill = EcsSkill()
    s = skill.Settings.model_validate({"cluster": "c", "service": "api"})
    node = Node(name="api", type="ecs", skill="aws-ecs", role="self", component="api",
                service="api", timeout=20, settings=s)  # fmt: skip
    window = Window.around(NOW - timedelta(minutes=30), NOW, 60, 60)
    names = [sig.name for sig in skill.judge(node, s, r, window).signals]
    for name in ("desired_count", "running_count", "pending_count", "rollout_state",
                 "deployments", "failed_tasks", "restarts", "oom_kills", "crashed_tasks",
                 "task_memory", "task_cpu", "task_definition", "exit_code",
                 "crashed_on_current_revision", "running_on_current_revision",
                 "survived_on_current_revision", "running_on_other_revisions",
                 "previous_task_definition", "interrupted_tasks", "placement_failures",
                 "memory_utilization"):  # fmt: skip
        assert name in names, name
    assert isinstance(skill.judge(node, s, r, window).signal("exit_code"), Signal)
