"""One investigation's page reads like its HTML report: the same row colours, the same graph."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_dashboard_access import paused

from rootloop.context import ContextStore
from rootloop.models import Outcome
from rootloop.serve.dashboard.board import Board
from rootloop.serve.dashboard.detail import detail_of


def test_history_rows_are_coloured_by_outcome_like_the_report(tmp_path: Path) -> None:
    contexts = ContextStore(tmp_path)
    ctx = paused(contexts, "run-1")
    board = Board(None, contexts)
    [row] = detail_of(board, "run-1").rows  # type: ignore[union-attr]
    assert row.css == "pending"  # still waiting: no outcome yet

    # the words of the result do not decide the colour, the outcome does
    ctx.history[0].end(Outcome.FIXED, "fixed: every entry symptom cleared and held", "done")
    ctx.status, ctx.pending_gate = "healthy", None
    contexts.save(ctx)
    [row] = detail_of(board, "run-1").rows  # type: ignore[union-attr]
    assert row.css == "pass"

    ctx.history[0].end(Outcome.SAME_FAULT, "passed the health check but the fault stayed")
    contexts.save(ctx)
    [row] = detail_of(board, "run-1").rows  # type: ignore[union-attr]
    assert row.css == "fail"


def test_the_graph_is_the_one_in_the_runs_report(tmp_path: Path) -> None:
    contexts = ContextStore(tmp_path)
    paused(contexts, "run-2")
    board = Board(None, contexts)
    assert detail_of(board, "run-2").svg == ""  # type: ignore[union-attr]  # no map, no report
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><g class="node ok"><text>db</text></g></svg>'
    (contexts.run_dir("run-2") / "report.html").write_text(
        f'<html><body><section><div class="graph">{svg}</div></section></body></html>',
        encoding="utf-8",
    )
    assert detail_of(board, "run-2").svg == svg  # type: ignore[union-attr]


def test_every_way_a_run_ends_has_the_reports_colour() -> None:
    """No run status falls back to the grey of a queued row unless the report greys it."""
    from typing import get_args

    from rootloop.context import RunStatus
    from rootloop.serve.dashboard.board import STATUS_CLASS
    from rootloop.serve.notifications import ENDED

    assert set(get_args(RunStatus)) <= set(STATUS_CLASS)
    assert STATUS_CLASS["recovered"] == "warn" and STATUS_CLASS["not-reproduced"] == "muted"
    # and the notifications announce each end (escalation has its own event)
    assert set(get_args(RunStatus)) - {"running", "paused", "escalated"} <= ENDED
