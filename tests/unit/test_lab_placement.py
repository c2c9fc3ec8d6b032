"""The lab's placement steps, as ECS's scheduler applies them: binpack fills the fullest
host that fits, spread evens the deployment's tasks over hosts or zones."""

from __future__ import annotations

from rootloop_lab.capacity import Host, _narrow


def hosts() -> list[Host]:
    a = Host("ci/a", "i-a", "lab-spot", "us-east-1a", used_mib={"t1": 256})
    b = Host("ci/b", "i-b", "lab-spot", "us-east-1a")
    c = Host("ci/c", "i-c", "lab-spot", "us-east-1b")
    return [a, b, c]


def test_binpack_chooses_the_fullest_host_that_fits():
    (chosen,) = _narrow(hosts(), {"type": "binpack", "field": "memory"}, {}, {})
    assert chosen.arn == "ci/a"


def test_spread_by_zone_then_instance_puts_the_next_task_apart():
    per_host = {"ci/a": 1, "ci/b": 0, "ci/c": 0}
    per_zone = {"us-east-1a": 1, "us-east-1b": 0}
    zone = {"type": "spread", "field": "attribute:ecs.availability-zone"}
    (chosen,) = _narrow(hosts(), zone, per_host, per_zone)
    assert chosen.arn == "ci/c"
    same_zone = _narrow(hosts()[:2], {"type": "spread", "field": "instanceId"}, per_host, per_zone)
    assert [h.arn for h in same_zone] == ["ci/b"]


def test_an_unknown_step_keeps_every_host():
    assert len(_narrow(hosts(), {"type": "random"}, {}, {})) == 3
