"""The live terminal view, fed real events, recorded to a string (no TTY)."""

from __future__ import annotations

import io
from datetime import timedelta

from rich.console import Console

from rootloop.events import Event, Fanout
from rootloop.models import PriorContext
from rootloop.report.terminal import TerminalView
from rootloop_lab.report_sample import RUN_ID, T0, sample_findings, sample_report


def _console(terminal: bool = False) -> Console:
    return Console(
        file=io.StringIO(), record=True, width=140, force_terminal=terminal, color_system=None
    )


def _ev(kind: str, i: int = 1, s: float = 0.0, message: str = "", **data: object) -> Event:
    return Event(
        kind=kind,
        run_id=RUN_ID,
        iteration=i,
        at=T0 + timedelta(seconds=s),
        message=message,
        data=data,
    )


def run_events() -> list[Event]:
    r = sample_report()
    d = r.diagnosis
    events = [
        _ev("run-start", 0, service="payments-api", environment="lower", resumed=False),
        _ev("prior", 0, **r.prior.model_dump(mode="json")),
        _ev("phase", 3, 1.0, phase="sweep", state="start"),
    ]
    events += [_ev("finding", 3, 1.5, **f.model_dump(mode="json")) for f in sample_findings()]
    events += [
        _ev("phase", 3, 2.4, phase="sweep", state="end"),
        _ev(
            "diagnosis",
            3,
            2.5,
            diagnosis=d.model_dump(mode="json"),
            rationale="runbook connection-exhaustion step 2: bound the pool",
        ),
        _ev("gate", 3, 2.6, gate="schema", decision="allow", reason="no schema change"),
        _ev(
            "action",
            3,
            3.0,
            description="code fix - bound the pg connection pool to 20",
            result={"message": "commit b7e2d45 pushed"},
        ),
        _ev("progress", 3, 9.0, message="waiting for CI run 7732"),
        _ev("verify", 3, 30.0, **r.verify.model_dump(mode="json")),
        _ev(
            "test",
            3,
            62.0,
            load_test=r.load_test.model_dump(mode="json"),
            ui_test=r.ui_test.model_dump(mode="json"),
        ),
        _ev("pr", 3, 63.0, path="/state/runs/x/pr.md", branch=r.branch, created=True),
        _ev("run-end", 3, 63.1, status="healthy", reason="verified and load-tested"),
    ]
    return events


def test_a_whole_run_renders_as_plain_lines() -> None:
    console = _console()
    view = TerminalView(console)
    for e in run_events():
        view(e)
    out = console.export_text()
    assert view.use_spinner is False
    assert f"run {RUN_ID}" in out
    assert (
        "previous context" in out and "won't repeat: infra fix - set ECS task memory to 4096" in out
    )
    assert "[3] sweep …" in out and "[3] sweep done in 1.4 s" in out
    assert "sweep: 11 checks, 5 anomalous" in out
    # the sweep table lists the worst first, with their latency
    lines = out.splitlines()
    pg = next(ln for ln in lines if "│ postgresql" in ln)
    assert "critical" in pg and "97 of 100 connections" in pg and pg.rstrip("│ ").endswith("57")
    assert lines.index(pg) < next(i for i, ln in enumerate(lines) if "│ redis " in ln)
    assert "root cause  postgresql   connection-exhaustion   confidence 86%" in out
    assert "path        payments-api → postgresql" in out
    assert "proposal    runbook connection-exhaustion step 2" in out
    assert "gate allow [schema]: no schema change" in out
    assert "action code fix - bound the pg connection pool to 20 → applied: commit b7e2d45" in out
    assert "… waiting for CI run 7732" in out
    assert "verify passed" in out and "✓ error rate — 0.3% over 60 s" in out
    assert "load test passed  600 requests at 20/s · success 99.83% · p50 38 ms · p95 122 ms" in out
    assert "ui test passed  4/4 steps" in out
    assert "PR opened /state/runs/x/pr.md" in out
    assert "run healthy: verified and load-tested" in out


def test_empty_prior_context_shows_nothing() -> None:
    console = _console()
    view = TerminalView(console)
    view(_ev("prior", 0, **PriorContext().model_dump(mode="json")))
    assert "previous context" not in console.export_text()


def test_escalation_and_failures_are_shown() -> None:
    r = sample_report("escalated")
    console = _console()
    view = TerminalView(console)
    view(_ev("test", 3, load_test=r.load_test.model_dump(mode="json")))
    view(
        _ev(
            "action",
            3,
            description="infra fix - set ECS task memory to 2048",
            error="AccessDenied: ecs:RegisterTaskDefinition",
        )
    )
    view(_ev("gate", 4, gate="production", decision="refuse", reason="environment production"))
    view(_ev("escalate", 4, reason="iteration budget spent (3 of 3)"))
    view(_ev("run-end", 4, status="escalated"))
    out = console.export_text()
    assert "load test failed" in out and "✗ p95 2140 ms is above 800 ms" in out
    assert "→ failed: AccessDenied: ecs:RegisterTaskDefinition" in out
    assert "gate refuse [production]: environment production" in out
    assert "escalated" in out and "iteration budget spent (3 of 3)" in out
    assert "A human takes it from here" in out


def test_malformed_event_data_never_raises() -> None:
    console = _console()
    fan = Fanout(TerminalView(console))
    fan(_ev("diagnosis", 1, message="odd", diagnosis={"root_cause": 3}))
    fan(_ev("finding", 1, message="bad finding", node="x"))
    fan(_ev("verify", 1, checks="nope"))
    assert fan.errors == []
    out = console.export_text()
    assert "diagnosis: odd" in out and "finding: bad finding" in out


def test_spinner_on_a_terminal_still_prints_results() -> None:
    console = _console(terminal=True)
    view = TerminalView(console)
    assert view.use_spinner
    for e in run_events():
        view(e)
    view.close()
    out = console.export_text()
    assert "sweep: 11 checks, 5 anomalous" in out
    assert "run healthy" in out
    assert view._spinner is None
