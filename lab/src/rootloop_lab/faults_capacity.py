"""Capacity and placement faults: Spot hosts reclaimed under payments-api.

The lab's capacity (``rootloop_lab.capacity``): payments-api runs on the ``lab-spot``
capacity provider (three Spot hosts); ``lab-on-demand`` has one idle on-demand host. A
Spot interruption is played for real: the host's EC2 instance is terminated in the
emulator and the lab's ECS agent stops every task on it, as ECS does.

- ``spot-capacity-lost``: Spot reclaims the pool: every ``lab-spot`` host is
  terminated, the Auto Scaling group gets no Spot capacity back, and ECS cannot place
  payments-api's task anywhere its all-Spot strategy allows; payments fail.
- ``placement-binpack-host-lost``: a cost-saving change runs payments-api as two tasks
  placed by ``binpack`` on memory, so both land on one host; that host is reclaimed and
  both tasks go at once (the service is down until they are replaced — on one host
  again).

The probes read the service, its tasks and the container instances with their own
boto3 client, and send payments through the gateway.
"""

from __future__ import annotations

import time
from typing import Any

from rootloop.errors import PlatformError
from rootloop.reasoning import categories as cat
from rootloop_lab.capacity import SPOT
from rootloop_lab.cloud import client
from rootloop_lab.layout import CLUSTER, SERVICE
from rootloop_lab.packs import PackScenario
from rootloop_lab.scenarios import Scenario, with_payments

WAIT = 60.0
BINPACK = [{"type": "binpack", "field": "memory"}]
SPREAD_FIELDS = ("instanceId", "attribute:ecs.availability-zone")


def _tasks(ecs: Any, status: str = "RUNNING") -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus=status)["taskArns"]
    found = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
    return [t for t in found if t.get("group") == f"service:{SERVICE}"]


def _hosts(ecs: Any) -> dict[str, dict[str, Any]]:
    arns = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    found = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)
    return {c["containerInstanceArn"]: c for c in found["containerInstances"]}


def _until(what: str, check: Any) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise PlatformError(f"{what} did not happen within {WAIT:g}s", "see the lab's supervisor.log")


def _reclaim(state: Any, instance_ids: list[str]) -> None:
    """Spot takes the instances back: EC2 terminates them."""
    client("ec2", state.endpoint_url).terminate_instances(InstanceIds=instance_ids)


def _interrupted(ecs: Any, at_least: int) -> bool:
    stopped = [t for t in _tasks(ecs, "STOPPED") if t.get("stopCode") == "SpotInterruption"]
    return len(stopped) >= at_least


def _reclaim_spot_pool(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    ecs = client("ecs", state.endpoint_url)
    spot = [
        c["ec2InstanceId"]
        for c in _hosts(ecs).values()
        if c.get("capacityProviderName") == SPOT and c.get("status") == "ACTIVE"
    ]
    _reclaim(state, spot)
    _until("the Spot interruption of payments-api's task", lambda: _interrupted(ecs, 1))
    return {"reclaimed": spot, "capacity_provider": SPOT}


def _binpack_then_reclaim(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    ecs = client("ecs", state.endpoint_url)
    ecs.update_service(
        cluster=CLUSTER,
        service=SERVICE,
        desiredCount=2,
        placementStrategy=BINPACK,
        forceNewDeployment=True,
    )

    def packed() -> str | None:
        tasks = _tasks(ecs)
        svc = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
        deployment = svc["deployments"][0]
        hosts = {t.get("containerInstanceArn") for t in tasks}
        done = deployment.get("rolloutState") == "COMPLETED" and len(tasks) == 2
        return next(iter(hosts)) if done and len(hosts) == 1 else None

    host = _until("two payments-api tasks packed on one host", packed)
    instance = _hosts(ecs)[host]["ec2InstanceId"]
    _reclaim(state, [instance])
    _until("the Spot interruption of both tasks", lambda: _interrupted(ecs, 2))
    return {"reclaimed": instance, "tasks_on_it": 2, "placement": "binpack(memory)"}


def _placed_and_serving(ecs: Any) -> tuple[bool, list[dict[str, Any]], dict[str, Any], str]:
    svc = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    tasks, hosts = _tasks(ecs), _hosts(ecs)
    on_live = [
        t
        for t in tasks
        if hosts.get(t.get("containerInstanceArn", ""), {}).get("status") == "ACTIVE"
    ]
    ok = len(on_live) >= int(svc["desiredCount"]) > 0
    return ok, on_live, svc, f"{len(on_live)}/{svc['desiredCount']} task(s) running on ACTIVE hosts"


def _capacity_back(lab: Any, state: Any) -> tuple[bool, str]:
    """The service runs at desired on live hosts, with a base on a provider that has some."""
    ecs = client("ecs", state.endpoint_url)
    ok, _tasks_now, svc, why = _placed_and_serving(ecs)
    live = {
        c.get("capacityProviderName") for c in _hosts(ecs).values() if c.get("status") == "ACTIVE"
    }
    based = [
        s["capacityProvider"]
        for s in svc.get("capacityProviderStrategy") or []
        if int(s.get("base", 0) or 0) > 0 and s["capacityProvider"] in live
    ]
    return ok and bool(based), f"{why}; base on {', '.join(based) or 'no provider with hosts'}"


def _spread_out(lab: Any, state: Any) -> tuple[bool, str]:
    """The service runs at desired, on at least two hosts, placed by a spread."""
    ecs = client("ecs", state.endpoint_url)
    ok, tasks, svc, why = _placed_and_serving(ecs)
    hosts = {t.get("containerInstanceArn") for t in tasks}
    spreads = any(
        p.get("type") == "spread" and p.get("field") in SPREAD_FIELDS
        for p in svc.get("placementStrategy") or []
    )
    placement = ", ".join(
        f"{p.get('type')}({p.get('field', '')})" for p in svc.get("placementStrategy") or []
    )
    return ok and len(hosts) >= 2 and spreads, (
        f"{why}, on {len(hosts)} host(s); placement {placement or 'none'}"
    )


SCENARIOS = [
    PackScenario(
        Scenario(
            name="spot-capacity-lost",
            root_cause="payments-api",
            category=cat.CAPACITY_LOST,
            description="Spot reclaims every host of payments-api's all-Spot capacity "
            "provider: its task is stopped (SpotInterruption) and ECS cannot place another; "
            "an on-demand provider of the cluster sits idle",
            fix="a capacity-provider strategy with a base of one task on lab-on-demand",
            fix_kinds=["set-capacity-provider-strategy"],
        ),
        _reclaim_spot_pool,
        with_payments(_capacity_back),
    ),
    PackScenario(
        Scenario(
            name="placement-binpack-host-lost",
            root_cause="payments-api",
            category=cat.PLACEMENT_BLAST_RADIUS,
            description="payments-api runs two tasks placed by binpack(memory): both on one "
            "Spot host, which is reclaimed; both tasks stop at once and come back on one "
            "host again",
            fix="spread placement across zones and hosts (redeployed)",
            fix_kinds=["set-placement-strategy"],
        ),
        _binpack_then_reclaim,
        with_payments(_spread_out),
    ),
]
