"""The lab's EC2 capacity: hosts, capacity providers, task placement and host interruptions.

payments-api runs on container instances (the other services stay on Fargate). The
cluster has two capacity providers, each an Auto Scaling group of EC2 instances that
are registered as container instances:

- ``lab-spot``: three Spot hosts (two in us-east-1a, one in us-east-1b);
- ``lab-on-demand``: one on-demand host (us-east-1c), idle headroom.

payments-api's capacity-provider strategy is all Spot (``lab-spot``, weight 1) and its
placement strategy AWS's default for services (spread across zones, then instances).

The ECS agent (``rootloop_lab.agent``) asks ``place`` where each new task of a service
with a capacity-provider strategy goes, as ECS's scheduler would: a provider's ``base``
first, then by weight; only that provider's ACTIVE hosts with room for the task's
memory; then the placement strategy's steps in order (binpack on memory: the fullest
host that fits; spread on instanceId or on the zone attribute: the fewest tasks of the
deployment being placed). No room: the task is not started, the service stays below desired and gets
the event ECS writes ("was unable to place a task because no container instance met
all of its requirements").

A host whose EC2 instance is terminated (a Spot interruption, ``ec2
terminate-instances``) or whose container instance is set to DRAINING loses every task
on it: each is stopped with ``stopCode`` SpotInterruption (a Spot host) or
TerminationNotice and ``stoppedReason`` "Host EC2 (instance i-…) terminated." (or
"… is draining."), and the container instance goes INACTIVE. The Auto Scaling group
does not replace a reclaimed Spot host in the lab: that is the capacity that is gone.

moto stores container instances, capacity providers and the service's strategies but
does not place tasks on hosts, keep a host's remaining resources in step with its
tasks, nor carry a container instance's ``capacityProviderName`` or a task's zone; the
lab sets those fields in the emulator's state, from which the API then serves them
(docs/aws.md).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rootloop_lab.cloud import Emulator, client
from rootloop_lab.layout import CLUSTER, SERVICE

log = logging.getLogger("rootloop_lab.capacity")

SPOT, ON_DEMAND = "lab-spot", "lab-on-demand"
HOSTS: tuple[tuple[str, str], ...] = (
    (SPOT, "us-east-1a"),
    (SPOT, "us-east-1a"),
    (SPOT, "us-east-1b"),
    (ON_DEMAND, "us-east-1c"),
)
HOST_MEMORY = 2048  # MiB per host
HOST_CPU = 2048
INSTANCE_TYPE = "m5.large"
#: ECS's default placement for a service: spread across zones, then across instances
DEFAULT_PLACEMENT = [
    {"type": "spread", "field": "attribute:ecs.availability-zone"},
    {"type": "spread", "field": "instanceId"},
]
BASE_STRATEGY = [{"capacityProvider": SPOT, "weight": 1, "base": 0}]
UNPLACED_EVENT_EVERY = 20.0  # seconds between two "unable to place" events, as ECS does
INTERRUPTED = ("SpotInterruption", "TerminationNotice")


@dataclass
class Host:
    arn: str
    instance_id: str
    provider: str
    zone: str
    tasks: set[str] = field(default_factory=set)  # task ARNs placed here
    used_mib: dict[str, int] = field(default_factory=dict)

    @property
    def spot(self) -> bool:
        return self.provider == SPOT

    @property
    def free_mib(self) -> int:
        return HOST_MEMORY - sum(self.used_mib.values())


def create(endpoint: str) -> None:
    """Providers, their Auto Scaling groups and hosts, and payments-api's strategies."""
    ec2, ecs, asg = (client(s, endpoint) for s in ("ec2", "ecs", "autoscaling"))
    # the ECS-optimized AMI, as hosts of a cluster run (filtered: listing every image of
    # the emulator's catalogue costs seconds of the lab's start)
    ecs_amis = ec2.describe_images(Filters=[{"Name": "name", "Values": ["amzn2-ami-ecs-hvm-*"]}])
    ami = (ecs_amis["Images"] or ec2.describe_images()["Images"])[0]["ImageId"]
    subnets = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
    for provider in (SPOT, ON_DEMAND):
        zones = sorted({z for p, z in HOSTS if p == provider})
        asg.create_launch_configuration(
            LaunchConfigurationName=provider, ImageId=ami, InstanceType=INSTANCE_TYPE
        )
        asg.create_auto_scaling_group(
            AutoScalingGroupName=provider,
            LaunchConfigurationName=provider,
            MinSize=0,
            MaxSize=len(HOSTS),
            DesiredCapacity=0,
            VPCZoneIdentifier=",".join(subnets[z] for z in zones),
        )
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[provider])
        ecs.create_capacity_provider(
            name=provider,
            autoScalingGroupProvider={
                "autoScalingGroupArn": group["AutoScalingGroups"][0]["AutoScalingGroupARN"],
                "managedScaling": {"status": "DISABLED"},
            },
        )
    ecs.put_cluster_capacity_providers(
        cluster=CLUSTER,
        capacityProviders=[SPOT, ON_DEMAND],
        defaultCapacityProviderStrategy=BASE_STRATEGY,
    )
    for provider, zone in HOSTS:
        market = {"InstanceMarketOptions": {"MarketType": "spot"}} if provider == SPOT else {}
        inst = ec2.run_instances(
            ImageId=ami,
            MinCount=1,
            MaxCount=1,
            InstanceType=INSTANCE_TYPE,
            SubnetId=subnets[zone],
            **market,
        )["Instances"][0]
        ecs.register_container_instance(
            cluster=CLUSTER,
            instanceIdentityDocument=json.dumps(
                {"instanceId": inst["InstanceId"], "availabilityZone": zone}
            ),
        )
    ecs.update_service(
        cluster=CLUSTER,
        service=SERVICE,
        capacityProviderStrategy=BASE_STRATEGY,
        placementStrategy=DEFAULT_PLACEMENT,
    )


class Capacity:
    """The hosts as the ECS agent and scheduler see them (thread-safe)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.lock = threading.Lock()
        self.hosts: dict[str, Host] = {}
        self.last_unplaced: dict[str, float] = {}
        self.owner: dict[str, tuple[str, str]] = {}  # task ARN -> (service, deployment)
        self._load()

    def _load(self) -> None:
        from moto.ec2.models import ec2_backends

        ec2 = ec2_backends[self.emu.ecs.account_id][self.emu.ecs.region_name]
        for ci in self.emu.ecs.container_instances.get(CLUSTER, {}).values():
            inst = ec2.get_instance(ci.ec2_instance_id)
            provider = SPOT if inst.lifecycle == "spot" else ON_DEMAND
            zone = ci.attributes.get("ecs.availability-zone", "")
            ci.capacity_provider_name = provider
            self.hosts[ci.container_instance_arn] = Host(
                ci.container_instance_arn, ci.ec2_instance_id, provider, zone
            )
        self.publish()

    # -- the scheduler ------------------------------------------------------------------
    @staticmethod
    def uses_hosts(svc: Any) -> bool:
        return bool(getattr(svc, "capacity_provider_strategy", None))

    def place(self, service: str, svc: Any, memory_mib: int, deployment: str) -> Host | None:
        """The host a new task of ``service`` goes to, or None (the event is written).
        Spreads and bases count the tasks of the same deployment: a new deployment is
        placed across hosts by itself, as its tasks replace the old ones."""
        mine = (service, deployment)
        with self.lock:
            per_host = {
                h.arn: sum(1 for t in h.tasks if self.owner.get(t) == mine)
                for h in self.hosts.values()
            }
            per_zone: dict[str, int] = {}
            for h in self.hosts.values():
                per_zone[h.zone] = per_zone.get(h.zone, 0) + per_host[h.arn]
            provider = self._provider(mine, svc)
            fits = [
                h
                for h in self.hosts.values()
                if h.provider == provider and self._active(h) and h.free_mib >= memory_mib
            ]
            if not fits:
                self._unplaced(svc, provider)
                return None
            for step in list(getattr(svc, "placement_strategy", None) or DEFAULT_PLACEMENT):
                fits = _narrow(fits, step, per_host, per_zone)
            return fits[0]

    def _provider(self, mine: tuple[str, str], svc: Any) -> str:
        strategy = list(svc.capacity_provider_strategy)
        placed: dict[str, int] = {}
        for h in self.hosts.values():
            for t in h.tasks:
                if self.owner.get(t) == mine:
                    placed[h.provider] = placed.get(h.provider, 0) + 1
        for s in strategy:  # bases first
            if placed.get(s["capacityProvider"], 0) < int(s.get("base", 0) or 0):
                return str(s["capacityProvider"])
        weighted = [s for s in strategy if int(s.get("weight", 0) or 0) > 0] or strategy
        return str(
            min(
                weighted,
                key=lambda s: (
                    placed.get(s["capacityProvider"], 0) / max(1, int(s.get("weight", 1) or 1))
                ),
            )["capacityProvider"]
        )

    def _active(self, h: Host) -> bool:
        ci = self._instance(h)
        return ci is not None and ci.status == "ACTIVE" and self._running(h)

    def _instance(self, h: Host) -> Any:
        return self.emu.ecs.container_instances.get(CLUSTER, {}).get(h.arn.rsplit("/", 1)[-1])

    def _running(self, h: Host) -> bool:
        from moto.ec2.models import ec2_backends

        ec2 = ec2_backends[self.emu.ecs.account_id][self.emu.ecs.region_name]
        try:
            return ec2.get_instance(h.instance_id).state == "running"
        except Exception:
            return False

    def _unplaced(self, svc: Any, provider: str) -> None:
        now = time.monotonic()
        if now - self.last_unplaced.get(svc.name, -1e9) < UNPLACED_EVENT_EVERY:
            return
        self.last_unplaced[svc.name] = now
        svc.events.insert(
            0,
            {
                "id": str(uuid.uuid4()),
                "createdAt": datetime.now(UTC),
                "message": f"(service {svc.name}) was unable to place a task because no "
                "container instance met all of its requirements. Reason: No Container "
                f"Instances were found in your capacity provider {provider}.",
            },
        )
        log.warning("%s: no room for a task in capacity provider %s", svc.name, provider)

    # -- bookkeeping ------------------------------------------------------------------
    def record(
        self, task_arn: str, service: str, deployment: str, host: Host, memory_mib: int
    ) -> None:
        with self.lock:
            host.tasks.add(task_arn)
            host.used_mib[task_arn] = memory_mib
            self.owner[task_arn] = (service, deployment)
            task = self.emu.ecs.tasks.get(CLUSTER, {}).get(task_arn)
            if task is not None:
                task.container_instance_arn = host.arn
                task.capacity_provider_name = host.provider
                task.availability_zone = host.zone
                task.launch_type = "EC2"
        self.publish()

    def forget(self, task_arn: str) -> None:
        with self.lock:
            for h in self.hosts.values():
                h.tasks.discard(task_arn)
                h.used_mib.pop(task_arn, None)
            self.owner.pop(task_arn, None)
        self.publish()

    def publish(self) -> None:
        """Each host's remaining resources and task count, as the ECS agent reports them."""
        for h in self.hosts.values():
            ci = self._instance(h)
            if ci is None:
                continue
            pairs = ((ci.registered_resources, HOST_MEMORY), (ci.remaining_resources, h.free_mib))
            for resources, value in pairs:
                for r in resources:
                    if r["name"] == "MEMORY":
                        r["integerValue"] = value
                    elif r["name"] == "CPU":
                        r["integerValue"] = HOST_CPU
            ci.running_tasks_count = len(h.tasks)

    # -- interruptions ----------------------------------------------------------------
    def interrupted(self) -> list[tuple[Host, str, str]]:
        """Hosts that are going away, each once: (host, stop code, stopped reason)."""
        out = []
        with self.lock:
            for h in list(self.hosts.values()):
                ci = self._instance(h)
                draining = ci is not None and ci.status == "DRAINING"
                if self._running(h) and not draining:
                    continue
                code = "SpotInterruption" if h.spot else "TerminationNotice"
                why = (
                    f"Host EC2 (instance {h.instance_id}) is draining."
                    if draining and self._running(h)
                    else f"Host EC2 (instance {h.instance_id}) terminated."
                )
                out.append((h, code, why))
        return out

    def retire(self, h: Host) -> None:
        """Deregister a host whose tasks have all stopped."""
        with self.lock:
            self.hosts.pop(h.arn, None)
        ci = self._instance(h)
        if ci is not None:
            ci.status = "INACTIVE"  # still described, as ECS keeps it for a while
            ci.agent_connected = False
        log.warning("host %s (%s, %s) deregistered", h.instance_id, h.provider, h.zone)


def _narrow(
    hosts: list[Host], step: dict[str, Any], per_host: dict[str, int], per_zone: dict[str, int]
) -> list[Host]:
    """One placement-strategy step: keep the hosts it prefers (ties stay, in order).
    binpack: the least free memory (the fullest host that still fits); spread: the fewest
    of the service's tasks on the host, or in its zone."""
    kind, on = str(step.get("type", "")), str(step.get("field", "") or "")
    key: Callable[[Host], float]
    if kind == "binpack":
        key = _free
    elif kind == "spread" and on.lower() in ("instanceid", "host"):
        key = lambda h: per_host.get(h.arn, 0)  # noqa: E731
    elif kind == "spread" and on.endswith("availability-zone"):
        key = lambda h: per_zone.get(h.zone, 0)  # noqa: E731
    else:
        return hosts
    best = min(key(h) for h in hosts)
    return [h for h in hosts if key(h) == best]


def _free(h: Host) -> float:
    return h.free_mib
