"""ECS capacity and placement: hosts that went away, and where the service's tasks were.

Read from the ECS check's capacity signals (``rootloop.skills.ecs_capacity``): tasks
stopped because their host was interrupted or terminated, the hosts the service runs
on, its placement strategy and capacity-provider strategy, ECS's "unable to place a
task" events, and which capacity providers still have room. A missing signal counts
as a precondition that does not hold.

Two faults, told apart by what the service looks like now:

- capacity lost: the service is below desired, ECS cannot place its replacements, and
  its capacity provider's hosts were the ones interrupted, while another provider of
  the cluster has room. The fix is a capacity-provider strategy with a base on that
  provider (the Spot article's "on-demand base");
- placement blast radius: one interruption took at least two tasks of the service from
  a single host (every task it had there), its placement strategy does not spread
  across hosts or zones, and there are hosts to spread across. The fix is spreading.

A Spot interruption of a service that spreads and still has capacity recovers by
itself: neither signature holds, nothing is done.
"""

from __future__ import annotations

from typing import Any

from rootloop.models import Finding
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import Hit, bad, bad_signal, component_of, num
from rootloop.topology import Topology

#: one host taking two tasks of a service at once is a blast radius (one is one task)
MIN_TASKS_ON_ONE_HOST = 2


def _interrupted(f: Finding) -> bool:
    return f.skill == "aws-ecs" and bad(f) and bad_signal(f, "interrupted_tasks")


def _evidence(f: Finding) -> list[str]:
    texts = [e.text.strip()[:240] for e in f.evidence if e.title == "capacity and placement"]
    return texts or [f.summary]


def capacity_lost(f: Finding, topo: Topology) -> list[Hit]:
    """The service lost its hosts and its capacity provider cannot replace them.

    Preconditions, all of them:
    - the ECS check is unhealthy and counted tasks stopped by a host interruption
      (``interrupted_tasks`` judged bad);
    - the service runs below its desired count (``running_count`` < ``desired_count``);
    - ECS could not place a task of the service (``placement_failures`` judged bad);
    - the service draws on a capacity-provider strategy (``capacity_provider_strategy``)
      and another provider of the cluster has an ACTIVE host with room for a task and no
      interrupted host (``spare_capacity_providers``): there is somewhere to go.
    Facts: that provider (``base_provider``) for a base of tasks.
    """
    if not _interrupted(f) or not bad_signal(f, "placement_failures"):
        return []
    desired, running = num(f, "desired_count"), num(f, "running_count")
    if desired is None or running is None or running >= desired:
        return []
    strategy = f.value("capacity_provider_strategy")
    spare = str(f.value("spare_capacity_providers") or "")
    if not strategy or not spare:
        return []
    base = spare.split(",")[0].strip()
    lost = f.value("interrupted_providers") or "its capacity provider"
    return [
        Hit(
            component_of(f, topo),
            cat.CAPACITY_LOST,
            0.9,
            f"{int(running)}/{int(desired)} tasks: hosts of {lost} were interrupted and ECS "
            f"cannot place replacements; {base} has room",
            {"base_provider": base},
            _evidence(f),
            f.anomaly_started_at,
            f.node,
            [
                f"{int(num(f, 'interrupted_tasks') or 0)} task(s) stopped by a host interruption",
                f"{int(running)} of {int(desired)} tasks running",
                "ECS could not place a task of the service",
                f"capacity providers {strategy}; {base} has an ACTIVE host with room",
            ],
        )
    ]


def placement_blast_radius(f: Finding, topo: Topology) -> list[Hit]:
    """One host took several tasks of the service at once, and placement lets it.

    Preconditions, all of them:
    - the ECS check is unhealthy and counted tasks stopped by a host interruption;
    - one host took at least ``MIN_TASKS_ON_ONE_HOST`` of them (``interrupted_on_one_host``)
      and they were every task the service wants (>= ``desired_count``): the whole
      service went with one host;
    - the placement strategy does not spread across hosts or zones
      (``placement_spreads`` is False: binpack, random, or none of the two spreads);
    - at least two ACTIVE hosts serve the service's capacity (``active_hosts``), so
      spreading can put its tasks apart.
    """
    if not _interrupted(f) or f.value("placement_spreads") is not False:
        return []
    on_one, desired = num(f, "interrupted_on_one_host"), num(f, "desired_count")
    hosts = num(f, "active_hosts")
    if on_one is None or desired is None or hosts is None:
        return []
    if on_one < MIN_TASKS_ON_ONE_HOST or on_one < desired or hosts < 2:
        return []
    placement = f.value("placement_strategy") or "none"
    facts: dict[str, Any] = {"placement": placement}
    return [
        Hit(
            component_of(f, topo),
            cat.PLACEMENT_BLAST_RADIUS,
            0.88,
            f"one host took all {int(on_one)} tasks of the service at once: placement "
            f"{placement} does not spread them",
            facts,
            _evidence(f),
            f.anomaly_started_at,
            f.node,
            [
                f"one host interruption stopped {int(on_one)} task(s) of the service "
                f"(it wants {int(desired)})",
                f"placement strategy {placement} spreads across neither hosts nor zones",
                f"{int(hosts)} ACTIVE hosts to spread across",
            ],
        )
    ]


SIGNATURES = [capacity_lost, placement_blast_radius]
