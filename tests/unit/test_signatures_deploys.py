"""Crash on start of the deployed revision: crash loop vs a rollout that cannot finish,
and the look-alikes that are neither (an OOM kill, an old revision's crash, a task that
runs, a first revision with nothing to go back to)."""

from __future__ import annotations

from pathlib import Path

import rootloop
from rootloop import topology
from rootloop.models import Finding, Signal, Status
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import match
from rootloop.reasoning.signatures_deploys import crash_on_start
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
TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/payments-api:7"


def topo(tmp_path: Path) -> topology.Topology:
    (tmp_path / "m.yaml").write_text(MAP)
    return rootloop.load_map(tmp_path / "m.yaml", env={})


def ecs(
    crashes: int,
    running_current: int,
    running_other: int,
    previous: str | None = "payments-api:6",
    status: Status = DEG,
) -> Finding:
    return Finding(
        node="payments-api/compute",
        skill="aws-ecs",
        status=status,
        summary="payments-api: tasks stopped",
        signals=[
            Signal(name="task_definition", value=TD),
            Signal(
                name="crashed_on_current_revision", value=crashes, status=DEG if crashes else OK
            ),
            Signal(name="survived_on_current_revision", value=running_current),
            Signal(name="running_on_other_revisions", value=running_other),
            Signal(name="previous_task_definition", value=previous),
            Signal(name="exit_code", value=1, status=DEG),
        ],
    )


def test_every_task_of_the_revision_exiting_with_none_running_is_a_crash_loop(tmp_path):
    (hit,) = crash_on_start(ecs(crashes=5, running_current=0, running_other=0), topo(tmp_path))
    assert (hit.component, hit.category) == ("payments-api", cat.CRASH_LOOP)
    assert hit.facts == {"previous_task_definition": "payments-api:6"}


def test_the_old_revision_still_serving_makes_it_a_failed_deployment(tmp_path):
    (hit,) = crash_on_start(ecs(crashes=3, running_current=0, running_other=1), topo(tmp_path))
    assert hit.category == cat.FAILED_DEPLOYMENT
    assert "payments-api:7" in hit.summary


def test_a_single_exit_is_not_a_loop(tmp_path):
    assert crash_on_start(ecs(crashes=1, running_current=0, running_other=0), topo(tmp_path)) == []


def test_a_revision_with_a_task_that_outlived_its_crashes_does_start(tmp_path):
    assert crash_on_start(ecs(crashes=4, running_current=1, running_other=0), topo(tmp_path)) == []


def test_the_first_revision_has_nothing_to_roll_back_to(tmp_path):
    f = ecs(crashes=4, running_current=0, running_other=0, previous=None)
    assert crash_on_start(f, topo(tmp_path)) == []


def test_crashes_of_other_revisions_only_are_not_this(tmp_path):
    assert crash_on_start(ecs(crashes=0, running_current=0, running_other=1), topo(tmp_path)) == []


def test_an_unknown_running_count_holds_nothing(tmp_path):
    f = ecs(crashes=4, running_current=0, running_other=0)
    f = f.model_copy(
        update={"signals": [s for s in f.signals if s.name != "survived_on_current_revision"]}
    )
    assert crash_on_start(f, topo(tmp_path)) == []


def test_an_oom_killed_service_is_oom_not_a_crash_loop(tmp_path):
    """The skill leaves OOM kills out of crashed_on_current_revision; oom says why."""
    f = Finding(
        node="payments-api/compute",
        skill="aws-ecs",
        status=CRIT,
        summary="OOM-killed (exit 137)",
        signals=[
            Signal(name="oom_kills", value=3, status=CRIT),
            Signal(name="crashed_on_current_revision", value=0),
            Signal(name="survived_on_current_revision", value=0),
            Signal(name="previous_task_definition", value="payments-api:6"),
        ],
    )
    assert [h.category for h in match([f], topo(tmp_path))] == [cat.OOM]
