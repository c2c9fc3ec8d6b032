"""ECS capacity signatures: each acts when its preconditions hold and stays silent when
one does not (an interruption the service absorbed, a spread placement, nowhere else
to go, a single task)."""

from __future__ import annotations

from pathlib import Path

import rootloop
from rootloop import topology
from rootloop.models import Finding, Signal, Status
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import match
from rootloop.reasoning.signatures_capacity import capacity_lost, placement_blast_radius
from rootloop.skills import registry

registry.register("test-sleep", "tests.unit.skills_for_tests:SleepSkill")

MAP = """\
service: payments-api
self:
  compute: {skill: test-sleep}
downstream:
  - {name: redis, type: cache, skill: test-sleep}
"""
OK, DEG, CRIT = Status.OK, Status.DEGRADED, Status.CRITICAL


def topo(tmp_path: Path) -> topology.Topology:
    (tmp_path / "m.yaml").write_text(MAP)
    return rootloop.load_map(tmp_path / "m.yaml", env={})


def ecs(status: Status = CRIT, **over: object) -> Finding:
    values: dict[str, object] = {
        "desired_count": 1,
        "running_count": 0,
        "interrupted_tasks": (1, DEG),
        "interrupted_hosts": 1,
        "interrupted_on_one_host": 1,
        "interrupted_providers": "lab-spot",
        "placement_failures": (3, DEG),
        "capacity_provider_strategy": "lab-spot (weight 1, base 0)",
        "spare_capacity_providers": "lab-on-demand",
        "placement_strategy": "spread(attribute:ecs.availability-zone), spread(instanceId)",
        "placement_spreads": True,
        "active_hosts": 0,
    }
    values.update(over)
    signals = []
    for name, v in values.items():
        value, judged = v if isinstance(v, tuple) else (v, OK)
        signals.append(Signal(name=name, value=value, status=judged))
    return Finding(
        node="payments-api/compute", skill="aws-ecs", status=status, summary="s", signals=signals
    )


# -- capacity lost ------------------------------------------------------------------------


def test_interrupted_with_no_room_on_its_provider_and_room_elsewhere_is_capacity_lost(tmp_path):
    (hit,) = capacity_lost(ecs(), topo(tmp_path))
    assert hit.category == cat.CAPACITY_LOST and hit.component == "payments-api"
    assert hit.facts == {"base_provider": "lab-on-demand"}


def test_an_interruption_the_service_absorbed_is_not_capacity_lost(tmp_path):
    recovered = ecs(DEG, running_count=1, placement_failures=(0, OK))
    assert capacity_lost(recovered, topo(tmp_path)) == []


def test_no_other_provider_with_room_means_nothing_to_act_on(tmp_path):
    assert capacity_lost(ecs(spare_capacity_providers=None), topo(tmp_path)) == []


def test_below_desired_without_an_interruption_is_not_capacity_lost(tmp_path):
    f = ecs(interrupted_tasks=(0, OK), interrupted_providers=None)
    assert capacity_lost(f, topo(tmp_path)) == []


def test_a_launch_type_service_has_no_strategy_to_change(tmp_path):
    assert capacity_lost(ecs(capacity_provider_strategy=None), topo(tmp_path)) == []


# -- placement blast radius ----------------------------------------------------------------


def blast(**over: object) -> Finding:
    base: dict[str, object] = {
        "status": DEG,
        "desired_count": 2,
        "running_count": 2,
        "interrupted_tasks": (2, DEG),
        "interrupted_on_one_host": 2,
        "placement_failures": (0, OK),
        "placement_strategy": "binpack(memory)",
        "placement_spreads": False,
        "active_hosts": 2,
    }
    base.update(over)
    status = base.pop("status")
    return ecs(status, **base)  # type: ignore[arg-type]


def test_one_host_taking_every_task_of_a_binpacked_service_is_the_blast_radius(tmp_path):
    (hit,) = placement_blast_radius(blast(), topo(tmp_path))
    assert hit.category == cat.PLACEMENT_BLAST_RADIUS and hit.component == "payments-api"


def test_a_spread_service_losing_one_host_is_not_a_placement_fault(tmp_path):
    f = blast(placement_spreads=True, placement_strategy="spread(instanceId)")
    assert placement_blast_radius(f, topo(tmp_path)) == []


def test_a_single_task_service_has_no_blast_radius_to_shrink(tmp_path):
    f = blast(desired_count=1, running_count=1, interrupted_on_one_host=1)
    assert placement_blast_radius(f, topo(tmp_path)) == []


def test_part_of_the_service_on_the_lost_host_is_not_the_whole_service(tmp_path):
    assert placement_blast_radius(blast(desired_count=4), topo(tmp_path)) == []


def test_one_host_left_cannot_be_spread_over(tmp_path):
    assert placement_blast_radius(blast(active_hosts=1), topo(tmp_path)) == []


def test_an_unknown_placement_is_not_judged(tmp_path):
    f = blast(placement_spreads=None)
    assert placement_blast_radius(f, topo(tmp_path)) == []


def test_the_two_capacity_faults_do_not_both_hold(tmp_path):
    t = topo(tmp_path)
    for f in (ecs(), blast()):
        cats = {h.category for h in match([f], t)} & {cat.CAPACITY_LOST, cat.PLACEMENT_BLAST_RADIUS}
        assert len(cats) == 1
