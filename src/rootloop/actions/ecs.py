"""ECS infra actions: new task-definition revisions, rollback, restart, scale; a deploy waiter.

Each executor checks the production gate against the real resource first
(its name and its AWS tags, read with ListTagsForResource) and refuses with
``ActionRefused(gate="production")`` before any change. Each returns what it
changed and how to undo it (usually the previous task-definition ARN).

Exactly once: a changed task definition (resources, environment, a restart) is
registered as ONE revision tagged ``rootloop:action=<run>/<iteration>``; a resumed
run finds that revision by its tag and only deploys it if the service does not
run it yet. The revision a change is computed from, and a rollback's explicit
target, are journaled before the first side effect, so a resume neither stacks a
second revision nor rolls back "one more".
``wait_stable`` then watches the service until running = desired, the rollout
is complete and no task stopped since the deploy — or says why not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rootloop.actions.gates import refuse_foreign_account, refuse_live, refuse_unless_lower
from rootloop.errors import UserError
from rootloop.models.actions import (
    ActionResult,
    BaseAction,
    ForceDeployment,
    RollbackTaskDefinition,
    ScaleService,
    SetEnvVar,
    SetTaskResources,
)
from rootloop.platforms.aws.errors import AWS_ERRORS, translate
from rootloop.platforms.aws.session import AwsClients
from rootloop.redact import MASK, SENSITIVE_NAME
from rootloop.topology import Topology

if TYPE_CHECKING:
    from rootloop.actions.dispatch import Step

#: the tag that carries a revision's idempotency key
KEY_TAG = "rootloop:action"

EcsAction = SetTaskResources | SetEnvVar | RollbackTaskDefinition | ForceDeployment | ScaleService

#: fields of DescribeTaskDefinition that RegisterTaskDefinition accepts back
_REGISTER_KEYS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)


def apply(
    action: BaseAction, clients: AwsClients, topology: Topology, step: Step | None = None
) -> ActionResult:
    """Run one ECS action after the production gate; AWS failures raise AwsError."""
    from rootloop.actions.dispatch import Step

    handler = _HANDLERS.get(type(action))
    if handler is None:
        raise UserError(f"'{action.kind}' is not an ECS action")
    step = step or Step.detached(action.kind)
    try:
        refuse_unless_lower(topology, action)
        refuse_foreign_account(topology, action, clients.client("sts"))
        ecs_action = _ecs_action(action)
        svc = _service(clients, ecs_action.cluster, ecs_action.service)
        refuse_production(clients, topology, action, svc)
        return handler(action, clients, svc, step)
    except AWS_ERRORS as exc:
        raise translate(exc) from exc


_ECS_TYPES = (SetTaskResources, SetEnvVar, RollbackTaskDefinition, ForceDeployment, ScaleService)


def _ecs_action(action: BaseAction) -> EcsAction:
    if not isinstance(action, _ECS_TYPES):
        raise UserError(f"'{action.kind}' is not an ECS action")
    return action


def already_applied(action: BaseAction, clients: AwsClients, step: Step) -> bool:
    """Does the service already run what this action (under its key) would deploy?"""
    try:
        ecs_action = _ecs_action(action)
        svc = _service(clients, ecs_action.cluster, ecs_action.service)
        if isinstance(action, ScaleService):
            return svc.get("desiredCount") == action.desired and "previous_desired" in step.journal
        if isinstance(action, RollbackTaskDefinition):
            target = step.journal.get("rollback_target")
            return target is not None and svc["taskDefinition"] == target
        base = step.journal.get("previous_task_definition")
        if base is None:
            return False
        td = clients.ecs.describe_task_definition(taskDefinition=base)["taskDefinition"]
        mine = find_tagged(clients, td["family"], step.key, int(td["revision"]))
        return mine is not None and svc["taskDefinition"] == mine
    except AWS_ERRORS as exc:
        raise translate(exc) from exc


# -- gate ---------------------------------------------------------------------------------


def _tags(clients: AwsClients, arn: str) -> dict[str, str]:
    tags = clients.ecs.list_tags_for_resource(resourceArn=arn).get("tags", [])
    return {t["key"]: t.get("value", "") for t in tags}


def refuse_production(
    clients: AwsClients, topology: Topology, action: BaseAction, svc: dict[str, Any]
) -> None:
    """Refuse when the service, cluster or task definition is production by name or tag."""
    cluster_arn = svc.get("clusterArn", "")
    td_arn = svc.get("taskDefinition", "")
    resources = [
        ("ECS service", svc["serviceName"], svc["serviceArn"]),
        ("ECS cluster", cluster_arn.rsplit("/", 1)[-1], cluster_arn),
        ("ECS task definition", td_arn.rsplit("/", 1)[-1], td_arn),
    ]
    refuse_live(
        topology,
        action,
        [(kind, name, _tags(clients, arn) if arn else {}) for kind, name, arn in resources],
    )


# -- executors ------------------------------------------------------------------------------


def _service(clients: AwsClients, cluster: str, service: str) -> dict[str, Any]:
    found = clients.ecs.describe_services(cluster=cluster, services=[service]).get("services")
    if not found or found[0].get("status") == "INACTIVE":
        raise UserError(f"ECS service '{service}' not found in cluster '{cluster}'")
    svc: dict[str, Any] = found[0]
    return svc


def _register(
    clients: AwsClients,
    td: dict[str, Any],
    tags: list[dict[str, str]],
    change: Callable[[dict[str, Any]], None],
) -> str:
    body = {k: td[k] for k in _REGISTER_KEYS if td.get(k) is not None}
    body["containerDefinitions"] = [dict(c) for c in body["containerDefinitions"]]
    change(body)
    if tags:
        body["tags"] = tags
    arn: str = clients.ecs.register_task_definition(**body)["taskDefinition"]["taskDefinitionArn"]
    return arn


def _base_td(
    clients: AwsClients, svc: dict[str, Any], step: Step
) -> tuple[dict[str, Any], list[Any]]:
    """The revision the change is computed from: the one journaled before the first side
    effect (a resume), else the one the service runs now."""
    arn = step.journal.get("previous_task_definition") or svc["taskDefinition"]
    resp = clients.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    return resp["taskDefinition"], resp.get("tags", [])


def find_tagged(clients: AwsClients, family: str, key: str, after: int) -> str | None:
    """The revision of ``family`` newer than ``after`` whose key tag is ``key``."""
    kw: dict[str, Any] = {"familyPrefix": family, "sort": "DESC"}
    while True:
        page = clients.ecs.list_task_definitions(**kw)
        for arn in page.get("taskDefinitionArns", []):
            f, _, rev = arn.rsplit("/", 1)[-1].rpartition(":")
            if f != family or not rev.isdigit():
                continue
            if int(rev) <= after:  # older than the base: not ours (no order is assumed)
                continue
            tags = clients.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
            if any(t.get("key") == KEY_TAG and t.get("value") == key for t in tags.get("tags", [])):
                return str(arn)
        if not page.get("nextToken"):
            return None
        kw["nextToken"] = page["nextToken"]


def _register_once(
    clients: AwsClients,
    svc: dict[str, Any],
    step: Step,
    change: Callable[[dict[str, Any]], None],
    *,
    restart: bool = False,
) -> tuple[dict[str, Any], str]:
    """Register the changed revision once (found by its key tag after a crash) and deploy
    it unless the service runs it already. Returns (the base revision, the new ARN)."""
    td, tags = _base_td(clients, svc, step)
    new = find_tagged(clients, td["family"], step.key, int(td["revision"]))
    if new is None:
        step.before(
            "register",
            f"registering a revision of {td['family']} tagged {KEY_TAG}={step.key}",
            previous_task_definition=td["taskDefinitionArn"],
        )
        keyed = [t for t in tags if t.get("key") != KEY_TAG]
        new = _register(clients, td, [*keyed, {"key": KEY_TAG, "value": step.key}], change)
    if svc["taskDefinition"] != new:
        step.before("deploy", f"deploying {_short(new)}", deploying=new)
        _deploy(clients, svc, new, restart=restart)
        step.inside("deployed")
    return td, new


def _deploy(clients: AwsClients, svc: dict[str, Any], arn: str, *, restart: bool = False) -> None:
    clients.ecs.update_service(
        cluster=svc["clusterArn"],
        service=svc["serviceName"],
        taskDefinition=arn,
        forceNewDeployment=restart,
    )


def _no_op(svc: dict[str, Any], what: str) -> ActionResult:
    """The service already has the requested state: nothing registered, nothing deployed."""
    return ActionResult(
        ok=True,
        changed=f"{svc['serviceName']}: {what} already; nothing changed",
        no_op=True,
        details={"task_definition": svc["taskDefinition"]},
    )


def _set_resources(
    a: SetTaskResources, clients: AwsClients, svc: dict[str, Any], step: Step
) -> ActionResult:
    td, _ = _base_td(clients, svc, step)
    old_mem, old_cpu = td.get("memory"), td.get("cpu")
    same_mem = a.memory is None or str(a.memory) == str(old_mem)
    same_cpu = a.cpu is None or str(a.cpu) == str(old_cpu)
    if same_mem and same_cpu and "previous_task_definition" not in step.journal:
        return _no_op(svc, f"memory {old_mem}, cpu {old_cpu}")

    def change(body: dict[str, Any]) -> None:
        if a.memory is not None:
            ratio = a.memory / int(old_mem) if old_mem else None
            body["memory"] = str(a.memory)
            hard = [c for c in body["containerDefinitions"] if c.get("memory")]
            for c in hard:  # the container's hard limit is what the OOM killer enforces
                c["memory"] = (
                    a.memory
                    if len(hard) == 1 or ratio is None
                    else max(4, int(c["memory"] * ratio))
                )
        if a.cpu is not None:
            body["cpu"] = str(a.cpu)

    td, new = _register_once(clients, svc, step, change)
    what = []
    if a.memory is not None:
        what.append(f"memory {old_mem} -> {a.memory}")
    if a.cpu is not None:
        what.append(f"cpu {old_cpu} -> {a.cpu}")
    return ActionResult(
        ok=True,
        changed=f"{svc['serviceName']}: registered {_short(new)} ({', '.join(what)}) "
        f"and deployed it",
        undo=_undo(svc, td["taskDefinitionArn"]),
        details={
            "previous_task_definition": td["taskDefinitionArn"],
            "task_definition": new,
            "previous_memory": old_mem,
            "previous_cpu": old_cpu,
        },
    )


def _env_value(td: dict[str, Any], container: str, name: str) -> str | None:
    c = next(c for c in td["containerDefinitions"] if c["name"] == container)
    return next((e.get("value") for e in c.get("environment", []) if e["name"] == name), None)


def _set_env(a: SetEnvVar, clients: AwsClients, svc: dict[str, Any], step: Step) -> ActionResult:
    td, _ = _base_td(clients, svc, step)
    names = [c["name"] for c in td["containerDefinitions"]]
    target = a.container or names[0]
    if target not in names:
        raise UserError(
            f"container '{target}' is not in {td['family']} (it has {', '.join(names)})"
        )
    previous = _env_value(td, target, a.name)
    secret = bool(SENSITIVE_NAME.search(a.name))
    if previous == a.value and "previous_task_definition" not in step.journal:
        return _no_op(svc, f"{target} has {a.name}={MASK if secret else a.value}")

    def change(body: dict[str, Any]) -> None:
        c = next(c for c in body["containerDefinitions"] if c["name"] == target)
        env = [dict(e) for e in c.get("environment", [])]
        for e in env:
            if e["name"] == a.name:
                e["value"] = a.value
                break
        else:
            env.append({"name": a.name, "value": a.value})
        c["environment"] = env

    td, new = _register_once(clients, svc, step, change)
    shown = MASK if secret else a.value
    old = "unset" if previous is None else (MASK if secret else previous)
    return ActionResult(
        ok=True,
        changed=f"{svc['serviceName']}/{target}: {a.name} {old} -> {shown} in "
        f"{_short(new)}, deployed",
        undo=_undo(svc, td["taskDefinitionArn"]),
        details={
            "previous_task_definition": td["taskDefinitionArn"],
            "task_definition": new,
            "container": target,
        },
    )


def previous_revision(clients: AwsClients, current_arn: str) -> str:
    """The newest ACTIVE revision of the same family older than ``current_arn``."""
    family_rev = current_arn.rsplit("/", 1)[-1]
    family, _, rev = family_rev.rpartition(":")
    kw: dict[str, Any] = {"familyPrefix": family, "sort": "DESC", "status": "ACTIVE"}
    while True:
        page = clients.ecs.list_task_definitions(**kw)
        for arn in page.get("taskDefinitionArns", []):
            f, _, r = arn.rsplit("/", 1)[-1].rpartition(":")
            if f == family and r.isdigit() and rev.isdigit() and int(r) < int(rev):
                return str(arn)
        if not page.get("nextToken"):
            break
        kw["nextToken"] = page["nextToken"]
    raise UserError(f"{family_rev} has no earlier ACTIVE revision to roll back to")


def _rollback(
    a: RollbackTaskDefinition, clients: AwsClients, svc: dict[str, Any], step: Step
) -> ActionResult:
    """Roll back to an EXPLICIT revision: "the previous one" is resolved once, journaled
    with the revision it was previous to, and a resume deploys that same target."""
    current = step.journal.get("previous_task_definition") or svc["taskDefinition"]
    target = step.journal.get("rollback_target")
    if target is None:
        wanted = a.task_definition or previous_revision(clients, current)
        target = clients.ecs.describe_task_definition(taskDefinition=wanted)["taskDefinition"][
            "taskDefinitionArn"
        ]
    if svc["taskDefinition"] != target:
        step.before(
            "deploy",
            f"rolling {svc['serviceName']} back to {_short(target)}",
            previous_task_definition=current,
            rollback_target=target,
        )
        _deploy(clients, svc, target)
    elif "rollback_target" not in step.journal:
        return _no_op(svc, f"runs {_short(target)}")
    return ActionResult(
        ok=True,
        changed=f"{svc['serviceName']}: rolled back {_short(current)} -> {_short(target)}",
        undo=_undo(svc, current),
        details={"previous_task_definition": current, "task_definition": target},
    )


def _force(
    a: ForceDeployment, clients: AwsClients, svc: dict[str, Any], step: Step
) -> ActionResult:
    """A restart is a deploy of a copy of the running revision, tagged with the action's
    key: a resumed run finds the copy and does not restart the service a second time."""
    td, new = _register_once(clients, svc, step, lambda _body: None, restart=True)
    return ActionResult(
        ok=True,
        changed=f"{svc['serviceName']}: restarted: deployed {_short(new)}, a copy of "
        f"{_short(td['taskDefinitionArn'])}",
        undo="nothing to undo: the same configuration was redeployed",
        details={"previous_task_definition": td["taskDefinitionArn"], "task_definition": new},
    )


def _scale(a: ScaleService, clients: AwsClients, svc: dict[str, Any], step: Step) -> ActionResult:
    old = step.journal.get("previous_desired", svc.get("desiredCount", 0))
    if old == a.desired:
        return _no_op(svc, f"desired count is {a.desired}")
    if svc.get("desiredCount") != a.desired:
        step.before("scale", f"scaling {svc['serviceName']} to {a.desired}", previous_desired=old)
        clients.ecs.update_service(
            cluster=svc["clusterArn"], service=svc["serviceName"], desiredCount=a.desired
        )
    return ActionResult(
        ok=True,
        changed=f"{svc['serviceName']}: desired count {old} -> {a.desired}",
        undo=(
            f"aws ecs update-service --cluster {svc['clusterArn'].rsplit('/', 1)[-1]} "
            f"--service {svc['serviceName']} --desired-count {old}"
        ),
        details={"previous_desired": old, "desired": a.desired},
    )


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _undo(svc: dict[str, Any], arn: str) -> str:
    return (
        f"aws ecs update-service --cluster {svc['clusterArn'].rsplit('/', 1)[-1]} "
        f"--service {svc['serviceName']} --task-definition {arn}"
    )


_HANDLERS: dict[type, Callable[..., ActionResult]] = {
    SetTaskResources: _set_resources,
    SetEnvVar: _set_env,
    RollbackTaskDefinition: _rollback,
    ForceDeployment: _force,
    ScaleService: _scale,
}


# -- deploy waiter --------------------------------------------------------------------------


@dataclass
class DeployProgress:
    """One poll of the service while waiting; the CLI prints these."""

    elapsed: float
    desired: int
    running: int
    pending: int
    rollout_state: str
    deployments: int
    new_stopped: int

    def __str__(self) -> str:
        return (
            f"{self.elapsed:5.0f}s running {self.running}/{self.desired}, pending "
            f"{self.pending}, {self.deployments} deployment(s), rollout "
            f"{self.rollout_state or '-'}, {self.new_stopped} task(s) stopped since deploy"
        )


@dataclass
class StabilityResult:
    stable: bool
    reason: str
    elapsed: float
    last: DeployProgress | None = None
    stopped_reasons: list[str] = field(default_factory=list)
    polls: int = 0


def _stopped(clients: AwsClients, cluster: str, service: str) -> dict[str, dict[str, Any]]:
    arns = clients.ecs.list_tasks(
        cluster=cluster, serviceName=service, desiredStatus="STOPPED", maxResults=100
    ).get("taskArns", [])
    if not arns:
        return {}
    tasks = clients.ecs.describe_tasks(cluster=cluster, tasks=arns).get("tasks", [])
    return {
        t["taskArn"]: t
        for t in tasks
        if t.get("group", f"service:{service}") == f"service:{service}"
    }


def wait_stable(
    clients: AwsClients,
    cluster: str,
    service: str,
    timeout: float = 600.0,
    poll: float = 10.0,
    on_progress: Callable[[DeployProgress], None] | None = None,
    since: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> StabilityResult:
    """Wait until running = desired, one completed deployment, no task stopped since the deploy.

    Tasks count as "since the deploy" when they stopped after ``since`` (default: the
    primary deployment's creation) or, where ``stoppedAt`` is missing, when they were
    not already stopped when waiting began.
    """
    start = time.monotonic()
    try:
        before = set(_stopped(clients, cluster, service))
        polls = 0
        last: DeployProgress | None = None
        while True:
            polls += 1
            svc = _service(clients, cluster, service)
            deps = svc.get("deployments", [])
            primary: dict[str, Any] = next((d for d in deps if d.get("status") == "PRIMARY"), {})
            t0 = since or primary.get("createdAt")
            new = [
                t
                for arn, t in _stopped(clients, cluster, service).items()
                if (t["stoppedAt"] >= t0 if t.get("stoppedAt") and t0 else arn not in before)
            ]
            rollout = primary.get("rolloutState", "")
            last = DeployProgress(
                elapsed=time.monotonic() - start,
                desired=svc.get("desiredCount", 0),
                running=svc.get("runningCount", 0),
                pending=svc.get("pendingCount", 0),
                rollout_state=rollout,
                deployments=len(deps),
                new_stopped=len(new),
            )
            if on_progress:
                on_progress(last)
            reasons = [t.get("stoppedReason", "") or "(no reason)" for t in new]
            if new:
                return StabilityResult(
                    False,
                    f"{len(new)} task(s) stopped since the deploy: {reasons[0]}",
                    last.elapsed,
                    last,
                    reasons,
                    polls,
                )
            if rollout == "FAILED":
                return StabilityResult(
                    False,
                    f"rollout failed: {primary.get('rolloutStateReason', '')}",
                    last.elapsed,
                    last,
                    [],
                    polls,
                )
            done = rollout in ("", "COMPLETED") and len(deps) <= 1
            if last.running == last.desired and last.pending == 0 and done:
                return StabilityResult(
                    True,
                    f"stable: {last.running}/{last.desired} running, rollout complete",
                    last.elapsed,
                    last,
                    [],
                    polls,
                )
            if time.monotonic() - start + poll > timeout:
                return StabilityResult(
                    False, f"not stable after {timeout:g}s ({last})", last.elapsed, last, [], polls
                )
            sleep(poll)
    except AWS_ERRORS as exc:
        raise translate(exc) from exc
