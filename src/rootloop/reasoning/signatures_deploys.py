"""Tasks of the revision now deployed exit non-zero on start: a crash loop, or a rollout
that cannot finish.

Both come from a change that went out with the revision (a bad value, a missing
variable or secret) and both end the same way: back to the revision before. They
differ in the blast radius: while the previous revision still runs the service
serves and the deployment is stuck (failed deployment); once nothing runs, the
service is down (crash loop). A crash of some older revision, a task killed for
memory (OOM) or stopped by the scheduler is none of this.
"""

from __future__ import annotations

from typing import Any

from rootloop.models import Finding
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import Hit, bad, bad_signal, component_of, num
from rootloop.topology import Topology

MIN_CRASHES = 2  # one exit can be a one-off; a loop repeats


def crash_on_start(f: Finding, topo: Topology) -> list[Hit]:
    """Preconditions, all of them:
    - the ECS check is unhealthy and counted tasks of the revision now deployed that
      exited non-zero by themselves (``crashed_on_current_revision`` judged bad, at least
      two: not for memory, not stopped by the scheduler);
    - no task of that revision has outlived one of its crashes
      (``survived_on_current_revision`` is 0): a task of a crash-looping revision is
      running only between its start and its exit, so it shows nothing;
    - a revision before it exists (``previous_task_definition``) to go back to.
    Then: tasks of another revision still running → failed-deployment; none → crash-loop.
    """
    if f.skill != "aws-ecs" or not bad(f) or not bad_signal(f, "crashed_on_current_revision"):
        return []
    crashes = num(f, "crashed_on_current_revision") or 0
    running_current = num(f, "survived_on_current_revision")
    running_other = num(f, "running_on_other_revisions")
    previous = f.value("previous_task_definition")
    if crashes < MIN_CRASHES or running_current is None or running_current > 0:
        return []
    if not isinstance(previous, str) or not previous:
        return []
    current = str(f.value("task_definition", "") or "").rsplit("/", 1)[-1]
    stuck = bool(running_other and running_other > 0)
    category = cat.FAILED_DEPLOYMENT if stuck else cat.CRASH_LOOP
    facts: dict[str, Any] = {"previous_task_definition": previous}
    summary = (
        f"the rollout of {current} cannot finish: its tasks exit on start "
        f"({int(crashes)} so far) while {int(running_other or 0)} task(s) of an older "
        "revision still serve"
        if stuck
        else f"crash loop: every task of {current} exits on start ({int(crashes)} so far) "
        "and none runs"
    )
    exit_code = f.value("exit_code")
    return [
        Hit(
            component_of(f, topo),
            category,
            0.85,
            summary,
            facts,
            [e.text.strip()[:240] for e in f.evidence if e.kind == "event"][:2] or [f.summary],
            f.anomaly_started_at,
            f.node,
            [
                f"{int(crashes)} task(s) of {current} exited non-zero (exit {exit_code}) "
                "on their own",
                f"no task of {current} has outlived its crashes",
                f"the revision before it exists: {previous}",
                "an older revision still runs" if stuck else "nothing runs",
            ],
        )
    ]


SIGNATURES = [crash_on_start]
