"""The bench's per-step seconds: its own steps timed, the run's phases read from events."""

from __future__ import annotations

import time

from rootloop.events import Event
from rootloop_lab.cli.bench_phases import Phases, summary


def phase(name: str, state: str) -> Event:
    return Event(
        kind="phase", run_id="r", message=f"{name} {state}", data={"phase": name, "state": state}
    )


def test_steps_and_run_phases_are_summed_and_overhead_excludes_the_run():
    p = Phases()
    with p.step("restore"):
        time.sleep(0.01)
    with p.step("run"):
        p(phase("verify", "start"))
        time.sleep(0.02)
        p(phase("verify", "end"))
        p(phase("verify", "start"))
        p(phase("verify", "end"))
        p(Event(kind="diagnosis", run_id="r", message="x", data={}))
        p(phase("act", "end"))  # an end without its start is ignored, not a crash
    assert set(p.steps) == {"restore", "run"}
    assert p.run_phases["verify"] >= 0.02 and "act" not in p.run_phases
    assert abs(p.outside_run - p.steps["restore"]) < 1e-9
    line = p.line()
    assert line.index("restore") < line.index("run") and "verify" in line
    assert "outside the runs" in summary([p, Phases()])
