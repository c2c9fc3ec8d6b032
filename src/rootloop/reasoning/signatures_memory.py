"""Memory growth: a leak climbing toward the limit, told from a batch that spikes.

Both end in the same exit 137. A batch that needs more than it has (``oom``) jumps:
one or two samples carry the whole rise, and a bigger limit or a smaller batch is the
fix. A leak climbs with the work done — every sample a little higher, none carrying
the rise — and a bigger limit only moves the kill later; restarting only resets the
clock. So this diagnosis drives no rung by default (a leak is fixed in its code or the
configuration that turned it on, which only a service's own runbook can name), and a
human gets the leaking service named with its slope and time to the limit.
"""

from __future__ import annotations

from rootloop.models import Finding
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import Hit, bad, bad_signal, component_of, num
from rootloop.topology import Topology


def memory_growth(f: Finding, topo: Topology) -> list[Hit]:
    """Preconditions, all of them:
    - the service's ECS check is unhealthy for memory: its memory utilization is judged
      bad, or it counted containers killed for memory (``oom_kills`` > 0);
    - the memory samples since the task's last restart climb steadily
      (``memory_trend_steady``, ``rootloop.analysis.trend``: enough samples, most of
      them rising, no single step carrying half the rise), at a positive slope.
    """
    if f.skill != "aws-ecs" or not bad(f):
        return []
    kills = num(f, "oom_kills") or 0
    if not (bad_signal(f, "memory_utilization") or kills > 0):
        return []
    if f.value("memory_trend_steady") is not True:
        return []
    slope = num(f, "memory_trend_slope_pct_per_min")
    if slope is None or slope <= 0:
        return []
    to_limit = num(f, "memory_trend_minutes_to_limit")
    samples = num(f, "memory_trend_samples") or 0
    comp = component_of(f, topo)
    facts: dict[str, object] = {"slope_pct_per_min": slope}
    mem = num(f, "task_memory")
    if mem:
        facts["memory"], facts["memory_x2"] = int(mem), int(mem) * 2
    eta = f", the limit in {to_limit:g} min" if to_limit is not None else ""
    return [
        Hit(
            comp,
            cat.MEMORY_GROWTH,
            0.96,
            f"{comp} leaks memory: +{slope:g} %/min over {int(samples)} samples{eta}"
            + (f" ({int(kills)} OOM kill(s))" if kills else ""),
            facts,
            [f.summary],
            f.anomaly_started_at,
            f.node,
            [
                "memory judged bad" + (f", {int(kills)} container(s) OOM-killed" if kills else ""),
                f"a steady climb since the last restart: +{slope:g} %/min, "
                f"{int(samples)} samples, no single jump",
            ],
        )
    ]


SIGNATURES = [memory_growth]
