"""One investigation, gathered for its page: history, graph, evidence, fixes, the gate.

The topology graph is the HTML report's own SVG (``rootloop.report.svg``): the one
the loop last wrote into the run's report, with the sweep's colours, so the page
and the report show the same picture; before there is a report, it is drawn from
the run's map and its last diagnosis. Everything passes the map's redactor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rootloop.context import DebugContext, HistoryEntry, HumanDecision
from rootloop.models import Diagnosis, Outcome
from rootloop.models.actions import ApplyPatch
from rootloop.redact import Redactor
from rootloop.serve.dashboard.board import Board, Item, Plan, patch_diff, plan_of


@dataclass
class Row:
    iteration: int
    diagnosis: str
    action: str
    commit: str
    ci: str
    result: str
    phase: str
    css: str


@dataclass
class Fix:
    iteration: int
    title: str
    diff: str


@dataclass
class DetailView:
    item: Item
    ctx: DebugContext | None
    rows: list[Row] = field(default_factory=list)
    diagnosis: Diagnosis | None = None
    svg: str = ""
    plan: Plan | None = None
    fingerprint: str = ""
    fixes: list[Fix] = field(default_factory=list)
    decisions: list[HumanDecision] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alerts: list[dict[str, object]] = field(default_factory=list)
    has_report: bool = False
    pending_gate_reason: str = ""


def _css(h: HistoryEntry) -> str:
    """The HTML report's colour for the row (``report.html``): read from the outcome,
    never from the words of the result."""
    if h.outcome is None:
        return "pending"
    return "pass" if h.outcome is Outcome.FIXED else "fail"


_REPORT_GRAPH = re.compile(r'<div class="graph">(<svg\b.*?</svg>)</div>', re.DOTALL)


def _report_graph(report: Path) -> str:
    """The graph the loop last drew into the run's HTML report: its nodes carry the
    sweep's colours (the run's findings live only there, not in the context)."""
    try:
        match = _REPORT_GRAPH.search(report.read_text(encoding="utf-8"))
    except OSError:
        return ""
    return match.group(1) if match else ""


def _graph(ctx: DebugContext, diagnosis: Diagnosis | None, report: Path) -> str:
    if report_svg := _report_graph(report):
        return report_svg
    # No report yet: the map, with the path to the diagnosis' root cause and no colours.
    if not ctx.topology_file or not Path(ctx.topology_file).exists():
        return ""
    try:
        from rootloop.report.model import topology_view
        from rootloop.report.svg import render_svg
        from rootloop.skills import registry
        from rootloop.topology import load

        topo = load(ctx.topology_file, skills=registry)
        return topo.redactor.text(render_svg(topology_view(topo, [], diagnosis)))
    except Exception:  # a map that no longer loads costs the picture, not the page
        return ""


def detail_of(board: Board, inv_id: str) -> DetailView | None:
    item = board.item(inv_id)
    if item is None:
        return None
    ctx = board.context(inv_id)
    view = DetailView(item=item, ctx=ctx)
    if board.store is not None:
        view.alerts = board.store.alerts(investigation_id=inv_id, limit=20)
    if ctx is None:
        return view
    redact = Redactor()
    view.diagnosis = next(
        (h.diagnosis_detail for h in reversed(ctx.history) if h.diagnosis_detail), None
    )
    if view.diagnosis is not None:
        view.diagnosis = Diagnosis.model_validate(redact.data(view.diagnosis.model_dump()))
    for h in ctx.history:
        view.rows.append(
            Row(
                h.iteration,
                redact(h.diagnosis),
                redact(h.action or "—"),
                (h.commit or "")[:10],
                redact(h.gha or ""),
                redact(h.result),
                h.phase,
                _css(h),
            )
        )
        if isinstance(h.action_detail, ApplyPatch):
            view.fixes.append(
                Fix(h.iteration, redact(h.action_detail.title), redact(patch_diff(h.action_detail)))
            )
    entry = ctx.current
    if ctx.status == "paused" and ctx.pending_gate and entry and entry.action_detail:
        view.plan = plan_of(entry.action_detail, redact)
        view.fingerprint = entry.action_detail.fingerprint()
        view.pending_gate_reason = redact(ctx.pending_gate.reason)
    report = board.run_dir(ctx.run_id) / "report.html"
    view.svg = _graph(ctx, view.diagnosis, report)
    view.decisions = ctx.decisions
    view.notes = [redact(n) for n in ctx.notes[-20:]]
    view.has_report = report.exists()
    return view
