"""Configuration deploys that do not start: the tasks of the new revision exit on start.

An operator ships a config-only revision of payments-api (same commit) with
``BATCH_INTERVAL="2s"``: the service parses it as a float when it starts, so every task
of that revision dies with ``ValueError`` (exit 1) before it serves. The lab's ECS agent
keeps the old revision's task while the new one cannot become ready, like an ECS
rolling deployment at 100 % minimum healthy: the rollout is stuck, the service still
serves (``deploy-crash-rollout-stuck``). When that old task goes too (its host is
recycled), nothing runs and the service is down (``crash-loop-bad-config``).

The probes read the service's task definition and running tasks from the emulator with
their own client, and send payments through the gateway.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from typing import Any

from rootloop.errors import PlatformError
from rootloop.reasoning import categories as cat
from rootloop_lab import procs
from rootloop_lab.cloud import client
from rootloop_lab.deployer import _KEEP  # the fields a new revision copies
from rootloop_lab.layout import CLUSTER, SERVICE
from rootloop_lab.packs import PackScenario
from rootloop_lab.scenarios import Scenario, with_payments

BAD = ("BATCH_INTERVAL", "2s")
CRASH_WAIT = 60.0
STAY_UP = 5.0


def _ship_bad_config(state: Any) -> tuple[str, str]:
    """Register the bad revision and deploy it; (old ARN, new ARN)."""
    ecs = client("ecs", state.endpoint_url)
    svc = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    spec = {k: td[k] for k in _KEEP if td.get(k) not in (None, [], "")}
    for c in spec["containerDefinitions"]:
        env = [e for e in c.get("environment", []) if e["name"] != BAD[0]]
        c["environment"] = [*env, {"name": BAD[0], "value": BAD[1]}]
    new = ecs.register_task_definition(**spec)["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=new)
    return svc["taskDefinition"], new


def _wait_crashes(state: Any, revision: str, at_least: int = 2) -> int:
    ecs = client("ecs", state.endpoint_url)
    deadline = time.monotonic() + CRASH_WAIT
    while time.monotonic() < deadline:
        arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="STOPPED")[
            "taskArns"
        ]
        tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
        crashed = [t for t in tasks if t.get("taskDefinitionArn") == revision]
        if len(crashed) >= at_least:
            return len(crashed)
        time.sleep(0.5)
    raise PlatformError(
        f"no task of {revision.rsplit('/', 1)[-1]} stopped within {CRASH_WAIT:g}s",
        "see the lab's supervisor.log",
    )


def _rollout_stuck(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    old, new = _ship_bad_config(state)
    crashes = _wait_crashes(state, new)
    return {"bad_revision": new.rsplit("/", 1)[-1], "serving": old.rsplit("/", 1)[-1],
            "crashes": crashes, BAD[0]: BAD[1]}  # fmt: skip


def _crash_loop(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    facts = _rollout_stuck(lab, state, wait)
    # the old revision's task goes with its host: SIGTERM, as a drained instance sends
    pids = lab.layout.recorded_pids()
    old_tasks = [pid for name, pid in pids.items() if name.startswith(f"task-{SERVICE}-")]
    for pid in old_tasks:
        procs.kill_group(pid, signal.SIGTERM)
    return {**facts, "stopped_old_tasks": len(old_tasks)}


def _config_starts(lab: Any, state: Any) -> tuple[bool, str]:
    """The revision in service parses its setting, a task of the service runs a revision
    that parses it, and no task exited on its own for ``STAY_UP`` seconds (a crash loop
    stops one every second or two). Reads each look afresh: the lab's deployer may roll
    out rootloop's PR branch meanwhile, which replaces the tasks."""
    ecs = client("ecs", state.endpoint_url)

    def parses(arn: str) -> bool:
        td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        env = {e["name"]: e["value"] for e in td["containerDefinitions"][0].get("environment", [])}
        try:
            float(env.get(BAD[0], ""))
        except ValueError:
            return False
        return True

    def tasks(status: str) -> list[dict[str, Any]]:
        arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus=status)[
            "taskArns"
        ]
        found = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
        return [t for t in found if t.get("group") == f"service:{SERVICE}"]

    since = datetime.now(UTC)
    time.sleep(STAY_UP)
    crashed = [
        t
        for t in tasks("STOPPED")
        if t.get("stoppedAt") is not None
        and t["stoppedAt"] >= since
        and not str(t.get("stoppedReason", "")).startswith("Scaling activity")
        and any(c.get("exitCode") not in (None, 0) for c in t.get("containers", []))
    ]
    svc = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    in_service = svc["taskDefinition"]
    running = [t for t in tasks("RUNNING") if parses(t["taskDefinitionArn"])]
    ok = parses(in_service) and bool(running) and not crashed
    return ok, (
        f"{SERVICE} runs {in_service.rsplit('/', 1)[-1]} "
        f"({'parses' if parses(in_service) else 'does not parse'} {BAD[0]}); "
        f"{len(running)} running task(s) on a revision that parses it; "
        f"{len(crashed)} task(s) exited on their own in {STAY_UP:g}s"
    )


SCENARIOS = [
    PackScenario(
        Scenario(
            name="deploy-crash-rollout-stuck",
            root_cause="payments-api",
            category=cat.FAILED_DEPLOYMENT,
            description="a config-only revision of payments-api sets BATCH_INTERVAL=2s: its "
            "tasks exit 1 on start (ValueError); the old revision still serves, the rollout "
            "never completes",
            fix="roll back to the previous task-definition revision",
            fix_kinds=["rollback-task-definition"],
        ),
        _rollout_stuck,
        with_payments(_config_starts),
    ),
    PackScenario(
        Scenario(
            name="crash-loop-bad-config",
            root_cause="payments-api",
            category=cat.CRASH_LOOP,
            description="the same bad revision, and the old task's host is recycled: every "
            "task exits 1 on start, none runs, payments fail",
            fix="roll back to the previous task-definition revision",
            fix_kinds=["rollback-task-definition"],
        ),
        _crash_loop,
        with_payments(_config_starts),
    ),
]
