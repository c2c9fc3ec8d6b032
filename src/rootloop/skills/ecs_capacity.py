"""An ECS service's capacity: where its tasks run, how they are placed, what took them.

Why: a service on EC2 capacity fails in ways its tasks' exit codes do not tell. A Spot
interruption or a terminated host stops every task on it at once (``stopCode``
SpotInterruption / TerminationNotice, or a task whose host is no longer ACTIVE); a
placement strategy that binpacks puts every task on one host, so one host takes the
whole service (the blast radius); and when the capacity provider the service draws on
has no room left, ECS cannot place replacements ("unable to place a task") while
another provider of the cluster may still have room.

Read only for services that run on container instances (a capacity-provider strategy
or the EC2 launch type): a few calls — the cluster's container instances and the
service's running tasks. Everything else comes from what the ECS check already read.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rootloop.models import Evidence, Signal
from rootloop.skills.verdicts import Rule, Value, assess

INTERRUPTION_CODES = ("SpotInterruption", "TerminationNotice")
UNPLACED = re.compile(r"unable to place a task", re.I)
#: a stopped reason that blames the task's host going away (ECS: "Host EC2 (instance
#: i-…) terminated."), for emulators and agents that leave the stop code unset
HOST_GONE = re.compile(r"\b(host|instance)\b.*\b(terminated|draining|interrupt)", re.I)
SPREAD_FIELDS = ("instanceid", "host", "attribute:ecs.availability-zone")

#: the capacity signals (see ``rootloop.skills.verdicts``): tasks taken with their host,
#: and tasks ECS could not place, are degraded; the rest is reported
RULES: tuple[Rule, ...] = (
    Rule("placement_strategy"),
    Rule("placement_spreads"),
    Rule("capacity_provider_strategy"),
    Rule("interrupted_tasks", "flag"),
    Rule("interrupted_hosts"),
    Rule("interrupted_on_one_host"),
    Rule("interrupted_providers"),
    Rule("running_hosts"),
    Rule("active_hosts"),
    Rule("spare_capacity_providers"),
    Rule("placement_failures", "flag"),
)


@dataclass
class HostInfo:
    arn: str
    provider: str
    zone: str
    status: str
    free_mib: int | None


@dataclass
class Interruption:
    task: str
    host: str
    provider: str
    reason: str


@dataclass
class CapacityView:
    placement: list[dict[str, Any]]
    strategy: list[dict[str, Any]]
    hosts: dict[str, HostInfo] = field(default_factory=dict)
    running_hosts: list[str] = field(default_factory=list)
    interrupted: list[Interruption] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    task_memory: int | None = None

    def spreads(self) -> bool:
        """The placement strategy spreads tasks across hosts or zones."""
        return any(
            p.get("type") == "spread" and str(p.get("field", "")).lower() in SPREAD_FIELDS
            for p in self.placement
        )

    def spare_providers(self) -> list[str]:
        """Providers with an ACTIVE host that fits a task, none of whose hosts was
        interrupted in the window: where a base of tasks could go now."""
        hit = {i.provider for i in self.interrupted}
        need = self.task_memory or 0
        return sorted(
            {
                h.provider
                for h in self.hosts.values()
                if h.status == "ACTIVE"
                and h.provider
                and h.provider not in hit
                and (h.free_mib is None or h.free_mib >= need)
            }
        )

    def values(self) -> dict[str, Value]:
        """What the capacity view measured, by signal name (judged by ``RULES``)."""
        per_host = Counter(i.host for i in self.interrupted)
        in_strategy = {str(s.get("capacityProvider")) for s in self.strategy}
        active = [
            h
            for h in self.hosts.values()
            if h.status == "ACTIVE" and (not in_strategy or h.provider in in_strategy)
        ]
        return {
            "placement_strategy": _placement_text(self.placement) or None,
            "placement_spreads": self.spreads(),
            "capacity_provider_strategy": _strategy_text(self.strategy) or None,
            "interrupted_tasks": len(self.interrupted),
            "interrupted_hosts": len(per_host),
            "interrupted_on_one_host": max(per_host.values(), default=0),
            "interrupted_providers": ", ".join(
                sorted({i.provider for i in self.interrupted if i.provider})
            )
            or None,
            "running_hosts": len(set(self.running_hosts)),
            "active_hosts": len(active),
            "spare_capacity_providers": ", ".join(self.spare_providers()) or None,
            "placement_failures": len(self.unplaced),
        }

    def signals(self) -> list[Signal]:
        return assess(RULES, self.values()).signals

    def evidence(self) -> list[Evidence]:
        lines = [
            f"placement {_placement_text(self.placement) or 'none'}; capacity providers "
            f"{_strategy_text(self.strategy) or 'none (launch type)'}",
            *(
                f"host {h.arn.rsplit('/', 1)[-1]}: {h.provider or '?'} {h.zone} {h.status}, "
                f"{h.free_mib if h.free_mib is not None else '?'} MiB free, "
                f"{self.running_hosts.count(h.arn)} task(s) of the service"
                for h in self.hosts.values()
            ),
            *(
                f"task {i.task.rsplit('/', 1)[-1]} on {i.host.rsplit('/', 1)[-1]} "
                f"({i.provider or '?'}): {i.reason}"
                for i in self.interrupted[:5]
            ),
            *self.unplaced[:2],
        ]
        return [Evidence(kind="config", title="capacity and placement", text="\n".join(lines))]


def on_hosts(svc: dict[str, Any]) -> bool:
    return bool(svc.get("capacityProviderStrategy")) or svc.get("launchType") == "EC2"


def read(
    ecs: Any,
    cluster: str,
    svc: dict[str, Any],
    td: dict[str, Any],
    stopped: list[Any],
    events: list[dict[str, Any]],
) -> CapacityView:
    """The service's capacity view (blocking). ``stopped`` are the ECS check's stopped
    tasks of the window, ``events`` its service events of the window."""
    view = CapacityView(
        placement=list(svc.get("placementStrategy") or []),
        strategy=list(svc.get("capacityProviderStrategy") or []),
        task_memory=_int(td.get("memory")),
    )
    arns = ecs.list_container_instances(cluster=cluster).get("containerInstanceArns", [])
    if arns:
        for ci in ecs.describe_container_instances(cluster=cluster, containerInstances=arns).get(
            "containerInstances", []
        ):
            attrs = {a.get("name"): a.get("value") for a in ci.get("attributes", [])}
            free = next(
                (
                    r.get("integerValue")
                    for r in ci.get("remainingResources", [])
                    if r.get("name") == "MEMORY"
                ),
                None,
            )
            view.hosts[ci["containerInstanceArn"]] = HostInfo(
                ci["containerInstanceArn"],
                str(ci.get("capacityProviderName") or ""),
                str(attrs.get("ecs.availability-zone") or ""),
                str(ci.get("status") or ""),
                _int(free),
            )
    running = ecs.list_tasks(
        cluster=cluster, serviceName=svc["serviceName"], desiredStatus="RUNNING"
    ).get("taskArns", [])
    if running:
        for t in ecs.describe_tasks(cluster=cluster, tasks=running).get("tasks", []):
            if t.get("group") == f"service:{svc['serviceName']}" and t.get("containerInstanceArn"):
                view.running_hosts.append(t["containerInstanceArn"])
    for t in stopped:
        host = view.hosts.get(t.container_instance)
        gone = bool(t.container_instance) and (host is None or host.status != "ACTIVE")
        if t.stop_code in INTERRUPTION_CODES or (gone and HOST_GONE.search(t.reason)):
            provider = t.capacity_provider or (host.provider if host else "")
            view.interrupted.append(Interruption(t.arn, t.container_instance, provider, t.reason))
    view.unplaced = [
        str(e.get("message", "")) for e in events if UNPLACED.search(str(e.get("message", "")))
    ]
    return view


def _placement_text(placement: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p.get('type')}({p.get('field', '')})" for p in placement)


def _strategy_text(strategy: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{s.get('capacityProvider')} (weight {s.get('weight', 0)}, base {s.get('base', 0)})"
        for s in strategy
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
