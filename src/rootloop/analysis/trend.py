"""Memory over time: a steady climb (a leak) or a jump (a spike)?

A leak grows memory a little with every unit of work, so its samples rise step after
step and no single step carries the rise; a batch that needs more than it has jumps in
one or two samples. Both can end in an OOM kill; what tells them apart is the shape.

The samples are cut at restarts (a drop to less than half the previous value: a new
process starts small), because a leak starts over in each new task; each task's life
is then cut at the last time its memory stood at its lowest: the climb starts there (a
flat stretch before a leak began is not part of it). The latest life with enough
samples is judged — the running task's, or, right after a kill, the life that ended in
it. Within it the climb is *steady* when, all of them:

- there are at least ``MIN_SAMPLES`` samples (three rises: fewer cannot show a trend);
- most steps rise (at least two thirds: a trend, allowing the odd flat or dip sample);
- no single step carries half the total rise or more (a spike would);
- the total rise is positive.

The slope is the least-squares fit over the segment, in percentage points a minute;
``minutes_to_limit`` extrapolates it to 100 %.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

MIN_SAMPLES = 4


@dataclass(frozen=True)
class Trend:
    samples: int
    first: float
    last: float
    slope_per_min: float  # percentage points a minute (least squares)
    largest_step_share: float  # the largest single rise / the total rise
    rising_share: float  # steps that rise / all steps
    steady: bool

    @property
    def minutes_to_limit(self) -> float | None:
        if self.slope_per_min <= 0:
            return None
        return max(0.0, (100.0 - self.last) / self.slope_per_min)


def lives(times: list[datetime], values: list[float]) -> list[tuple[list[float], list[float]]]:
    """Each task's life as (seconds since its climb began, values), oldest first."""
    cuts = [0] + [i for i in range(1, len(values)) if values[i] < values[i - 1] / 2]
    out = []
    for a, b in zip(cuts, [*cuts[1:], len(values)], strict=True):
        vals = values[a:b]
        if not vals:
            continue
        lowest = min(vals)
        start = a + max(i for i, v in enumerate(vals) if v == lowest)
        t0 = times[start]
        out.append(([(t - t0).total_seconds() for t in times[start:b]], values[start:b]))
    return out


def memory_trend(times: list[datetime], values: list[float]) -> Trend | None:
    """The trend of the samples since the last restart; None when there are too few."""
    if len(times) != len(values):
        return None
    judged = [life for life in lives(times, values) if len(life[1]) >= MIN_SAMPLES]
    if not judged:
        return None
    secs, vals = judged[-1]
    n = len(vals)
    steps = [b - a for a, b in itertools.pairwise(vals)]
    rise = vals[-1] - vals[0]
    mean_t, mean_v = sum(secs) / n, sum(vals) / n
    var_t = sum((t - mean_t) ** 2 for t in secs)
    slope = (
        sum((t - mean_t) * (v - mean_v) for t, v in zip(secs, vals, strict=True)) / var_t * 60
        if var_t > 0
        else 0.0
    )
    largest = max((s for s in steps if s > 0), default=0.0)
    share = largest / rise if rise > 0 else 1.0
    rising = sum(1 for s in steps if s > 0) / len(steps)
    steady = rise > 0 and rising >= 2 / 3 and share < 0.5
    return Trend(n, vals[0], vals[-1], round(slope, 2), round(share, 2), round(rising, 2), steady)
