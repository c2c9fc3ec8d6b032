"""Where a bench scenario's time goes: the bench's own steps and the run's phases.

The bench's steps (restoring a clean lab, checking it is clean, injecting the fault,
waiting for its symptoms, the run, the probe) are timed with ``step``; the run's
phases (sweep, reason, gate, act, verify with its settle windows, test, pr) come from
the loop's own ``phase`` events, so nothing here reaches into the loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rootloop.events import Event

#: the bench's own steps, in the order they run; "run" holds the loop's phases
STEPS = ("restore", "check", "inject", "symptoms", "run", "probe")


@dataclass
class Phases:
    """Seconds per bench step and per loop phase, for one scenario."""

    steps: dict[str, float] = field(default_factory=dict)
    run_phases: dict[str, float] = field(default_factory=dict)
    _open: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps[name] = self.steps.get(name, 0.0) + time.monotonic() - started

    def __call__(self, event: Event) -> None:
        """An event sink: the loop's ``phase`` start/end pairs, summed per phase."""
        if event.kind != "phase":
            return
        name, state = event.data.get("phase"), event.data.get("state")
        if not isinstance(name, str):
            return
        now = time.monotonic()
        if state == "start":
            self._open[name] = now
        elif state == "end" and name in self._open:
            took = now - self._open.pop(name)
            self.run_phases[name] = self.run_phases.get(name, 0.0) + took

    @property
    def total(self) -> float:
        return sum(self.steps.values())

    @property
    def outside_run(self) -> float:
        """The bench's overhead: everything but rootloop's run itself."""
        return self.total - self.steps.get("run", 0.0)

    def line(self) -> str:
        run = self.steps.get("run", 0.0)
        inner = ", ".join(f"{k} {v:.1f}" for k, v in self.run_phases.items())
        other = run - sum(self.run_phases.values())
        parts = [
            f"{k} {self.steps[k]:.1f}"
            + (f" ({inner}, other {other:.1f})" if k == "run" and inner else "")
            for k in STEPS
            if k in self.steps
        ]
        return " · ".join(parts) + f" · total {self.total:.1f}s"


def summary(all_phases: list[Phases]) -> str:
    """Each step summed over the scenarios, with its mean: where the bench's time went."""
    if not all_phases:
        return "no scenario ran"
    n = len(all_phases)
    lines = []
    for k in STEPS:
        total = sum(p.steps.get(k, 0.0) for p in all_phases)
        lines.append(f"{k:<9} {total:7.1f}s  (mean {total / n:5.1f}s)")
    inner: dict[str, float] = {}
    for p in all_phases:
        for k, v in p.run_phases.items():
            inner[k] = inner.get(k, 0.0) + v
    if inner:
        lines.append("  in the runs: " + ", ".join(f"{k} {v:.0f}s" for k, v in inner.items()))
    outside = sum(p.outside_run for p in all_phases)
    lines.append(f"outside the runs: {outside:.1f}s (mean {outside / n:.1f}s per scenario)")
    return "\n".join(lines)
