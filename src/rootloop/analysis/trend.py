"""Memory over time: a steady climb (a leak) or a jump (a spike)?

A leak grows memory a little with every unit of work, so its samples rise step after
step and no single step carries the rise; a batch that needs more than it has jumps in
one or two samples. Both can end in an OOM kill; what tells them apart is the shape.

The samples are cut at the last restart (a drop to less than half the previous value:
a new process starts small), because a leak starts over in each new task, and then at
the last time memory stood at its lowest since: the climb starts there (a flat stretch
before a leak began is not part of it). Within that segment the climb is *steady* when,
all of them:

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


def current_segment(times: list[datetime], values: list[float]) -> tuple[list[float], list[float]]:
    """(seconds since the segment's first sample, values) after the last restart."""
    start = 0
    for i in range(1, len(values)):
        if values[i] < values[i - 1] / 2:
            start = i
    tail = values[start:]
    if tail:
        lowest = min(tail)
        start += max(i for i, v in enumerate(tail) if v == lowest)
    t0 = times[start] if times[start:] else None
    secs = [(t - t0).total_seconds() for t in times[start:]] if t0 else []
    return secs, values[start:]


def memory_trend(times: list[datetime], values: list[float]) -> Trend | None:
    """The trend of the samples since the last restart; None when there are too few."""
    if len(times) != len(values):
        return None
    secs, vals = current_segment(times, values)
    n = len(vals)
    if n < MIN_SAMPLES:
        return None
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
