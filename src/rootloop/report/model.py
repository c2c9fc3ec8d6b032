"""What a run produced, gathered once for every renderer (PR body, HTML, terminal).

``build_report`` takes the loop's objects (debug context, topology, findings,
results) and returns one redacted ``RunReport``: the renderers never see a
secret because the report never holds one. The topology is flattened into a
``TopologyView`` that already knows each node's status, its role around the
service, the root cause and the path from the symptom to it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field

from rootloop.context import DebugContext, RunStatus
from rootloop.models import (
    Diagnosis,
    Finding,
    LoadTestResult,
    Outcome,
    PriorContext,
    Status,
    UiTestResult,
    VerifyResult,
    utcnow,
    worst,
)
from rootloop.models.actions import ApplyPatch, RunMigration
from rootloop.models.maps import LoadTestSpec
from rootloop.reasoning.usage import report_view
from rootloop.redact import Redactor
from rootloop.topology import Topology

Role = Literal["service", "upstream", "downstream", "other"]

#: how each iteration outcome reads, in every renderer
OUTCOME_TEXT: dict[Outcome, str] = {
    Outcome.FIXED: "fixed",
    Outcome.SAME_FAULT: "same fault remains",
    Outcome.NEW_FAULT: "new fault exposed",
    Outcome.NO_OP: "changed nothing",
    Outcome.APPLY_FAILED: "failed to apply",
    Outcome.REFUSED: "refused by a gate",
    Outcome.INTERRUPTED: "interrupted, not run",
    Outcome.RECOVERED_WITHOUT_FIX: "recovered, not by this action",
}


def outcome_text(outcome: Outcome | None) -> str:
    return OUTCOME_TEXT[outcome] if outcome is not None else "unfinished"


class SymptomRow(BaseModel):
    """One entry symptom and what the last verification saw of it."""

    symptom: str
    cleared: bool | None  # None: not re-checked (no verification ran)
    now: str = ""


class TopoNode(BaseModel):
    """A component of the graph as the report shows it."""

    name: str
    type: str = ""
    role: Role = "other"
    status: Status | None = None  # None: no check ran on it
    summary: str = ""
    latency_ms: float | None = None
    checks: list[str] = []
    root_cause: bool = False
    on_path: bool = False


class TopoEdge(BaseModel):
    source: str  # caller
    target: str  # callee
    on_path: bool = False


class TopologyView(BaseModel):
    service: str
    nodes: list[TopoNode] = []
    edges: list[TopoEdge] = []
    root_cause: str | None = None
    path: list[str] = []

    def node(self, name: str) -> TopoNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    def graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(n.name for n in self.nodes)
        g.add_edges_from((e.source, e.target) for e in self.edges)
        return g

    def layers(self) -> dict[str, int]:
        """Left-to-right columns: each node one column right of its furthest caller."""
        g = self.graph()
        if not nx.is_directed_acyclic_graph(g):
            return {n: 0 for n in g}
        layer: dict[str, int] = {}
        for name in nx.topological_sort(g):
            preds = list(g.predecessors(name))
            layer[name] = 1 + max(layer[p] for p in preds) if preds else 0
        # pull sources right next to their first callee (an upstream of a deep node)
        for name in g:
            succ = list(g.successors(name))
            if not list(g.predecessors(name)) and succ:
                layer[name] = max(0, min(layer[s] for s in succ) - 1)
        return layer


class Usage(BaseModel):
    """Model usage of a run; empty when the deterministic reasoner ran alone."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    requests: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None

    @property
    def empty(self) -> bool:
        return not any(v for v in self.model_dump().values())


class RunReport(BaseModel):
    """Everything a reader of the PR or the HTML report needs; already redacted."""

    service: str
    run_id: str
    environment: str
    status: RunStatus
    status_reason: str = ""
    started_at: datetime
    finished_at: datetime = Field(default_factory=utcnow)
    branch: str | None = None
    pr: str | None = None
    topology: TopologyView
    findings: list[Finding] = []
    diagnosis: Diagnosis | None = None
    context: DebugContext
    verify: VerifyResult | None = None
    load_test: LoadTestResult | None = None
    load_spec: LoadTestSpec | None = None
    ui_test: UiTestResult | None = None
    prior: PriorContext | None = None
    usage: Usage | None = None
    human_checks: list[str] = []

    @property
    def fixed(self) -> bool:
        """Fixed and verified: the run ended healthy AND its last iteration's outcome is
        ``fixed``. Nothing else (a quiet sweep, a recovery) may be reported as a fix."""
        last = self.context.current
        return self.status == "healthy" and last is not None and last.outcome is Outcome.FIXED

    @property
    def verdict(self) -> str:
        """The key renderers look their headline up by: ``fixed`` or the run's status."""
        if self.fixed:
            return "fixed"
        return "unverified" if self.status == "healthy" else self.status

    def symptom_rows(self) -> list[SymptomRow]:
        """Each entry symptom with the last verification's verdict on it."""
        checks = [c for c in (self.verify.checks if self.verify else []) if c.symptom]
        rows = []
        for i, sym in enumerate(self.context.entry_symptoms):
            c = checks[i] if i < len(checks) else None
            rows.append(
                SymptomRow(
                    symptom=sym.label,
                    cleared=c.passed if c else None,
                    now=c.detail if c else "not re-checked",
                )
            )
        return rows

    @property
    def iterations(self) -> int:
        return max(self.context.iteration, len(self.context.history))


def build_report(
    ctx: DebugContext,
    topology: Topology,
    findings: Sequence[Finding],
    *,
    diagnosis: Diagnosis | None = None,
    verify: VerifyResult | None = None,
    load_test: LoadTestResult | None = None,
    ui_test: UiTestResult | None = None,
    prior: PriorContext | None = None,
    usage: dict[str, Any] | None = None,
    extra_checks: Iterable[str] = (),
    redactor: Redactor | None = None,
) -> RunReport:
    """Gather a run's results into one redacted report.

    ``findings`` are the findings behind the final diagnosis (the sweep that
    explained the fault); ``diagnosis`` defaults to the last one in the history.
    """
    if diagnosis is None:
        diagnosis = next(
            (h.diagnosis_detail for h in reversed(ctx.history) if h.diagnosis_detail), None
        )
    usage_data = usage if usage is not None else report_view(ctx.usage)
    report = RunReport(
        service=ctx.service,
        run_id=ctx.run_id,
        environment=ctx.environment,
        status=ctx.status,
        status_reason=ctx.status_reason,
        started_at=ctx.started_at,
        branch=ctx.branch,
        pr=ctx.pr,
        topology=topology_view(topology, findings, diagnosis),
        findings=list(findings),
        diagnosis=diagnosis,
        context=ctx,
        verify=verify,
        load_test=load_test,
        load_spec=topology.load_test,
        ui_test=ui_test,
        prior=prior,
        usage=Usage.model_validate(usage_data) if usage_data else None,
    )
    report.human_checks = [*human_checks(report, topology), *extra_checks]
    return redact_report(report, redactor or topology.redactor)


def redact_report(report: RunReport, redactor: Redactor) -> RunReport:
    """The same report with every string passed through the redactor."""
    data = redactor.data(report.model_dump(mode="json"))
    return RunReport.model_validate(data)


def topology_view(
    topology: Topology, findings: Sequence[Finding], diagnosis: Diagnosis | None
) -> TopologyView:
    g = topology.graph
    svc = topology.service
    comp_of = {n.name: n.component for n in topology.nodes.values()}

    def component(name: str) -> str:
        if name in g:
            return name
        return comp_of.get(name) or name.split("/", 1)[0]

    by_comp: dict[str, list[Finding]] = {}
    for f in findings:
        by_comp.setdefault(component(f.node), []).append(f)
    ancestors = nx.ancestors(g, svc) if svc in g else set()
    descendants = nx.descendants(g, svc) if svc in g else set()
    root = component(diagnosis.root_cause) if diagnosis else None
    path = _path(g, svc, root, [component(p) for p in (diagnosis.path if diagnosis else [])])
    on_path = set(path)
    path_pairs = set(itertools.pairwise(path))

    nodes = []
    for name in g.nodes:
        fs = by_comp.get(name, [])
        worst_f = max(fs, key=lambda f: f.status.severity) if fs else None
        role: Role = (
            "service"
            if name == svc
            else "upstream"
            if name in ancestors
            else "downstream"
            if name in descendants
            else "other"
        )
        nodes.append(
            TopoNode(
                name=name,
                type=str(g.nodes[name].get("type", "")),
                role=role,
                status=worst([f.status for f in fs]) if fs else None,
                summary=worst_f.summary if worst_f else "",
                latency_ms=round(max(f.duration_ms for f in fs), 1) if fs else None,
                checks=sorted(n.name for n in topology.checks_of(name)),
                root_cause=name == root,
                on_path=name in on_path,
            )
        )
    edges = [
        TopoEdge(source=a, target=b, on_path=(a, b) in path_pairs or (b, a) in path_pairs)
        for a, b in g.edges
    ]
    return TopologyView(service=svc, nodes=nodes, edges=edges, root_cause=root, path=path)


def _path(g: nx.DiGraph, svc: str, root: str | None, given: list[str]) -> list[str]:
    """The diagnosis's path if it walks the graph, else the shortest one service→root."""
    steps = [p for i, p in enumerate(given) if p in g and (i == 0 or given[i - 1] != p)]
    und = g.to_undirected(as_view=True)
    if len(steps) >= 2 and all(und.has_edge(a, b) for a, b in itertools.pairwise(steps)):
        return steps
    if root is None or root not in g:
        return []
    start = steps[0] if steps and steps[0] in g else svc
    if start not in g:
        return [root]
    try:
        return list(nx.shortest_path(und, start, root))
    except nx.NetworkXNoPath:
        return [root]


def human_checks(report: RunReport, topology: Topology) -> list[str]:
    """What a human must look at before this goes anywhere: the gates, in words."""
    ctx = report.context
    base = topology.repo.default_branch if topology.repo else "the default branch"
    checks = [
        f"Review the diff and merge it yourself: rootloop never merges and never pushes to "
        f"`{base}`."
    ]
    actions = [h.action_detail for h in ctx.history if h.action_detail is not None]
    schema = [
        a
        for a in actions
        if isinstance(a, RunMigration) or (isinstance(a, ApplyPatch) and a.touches_schema)
    ]
    if schema:
        names = ", ".join(a.describe() for a in schema)
        checks.append(
            f"Database schema change ({names}): check it is backward compatible and plan its "
            "production rollout; rootloop applied it only after explicit approval."
        )
    else:
        checks.append("No database schema change was made.")
    if topology.is_production_env:
        checks.append(
            f"The map is marked production (`{report.environment}`): rootloop diagnosed only "
            "and changed nothing."
        )
    else:
        checks.append(
            f"Production is untouched: every change ran in the `{report.environment}` "
            "environment; production rollout is yours."
        )
    infra = [
        h
        for h in ctx.history
        if h.action_detail is not None
        and h.action_detail.family == "infra"
        and h.phase in ("applied", "verified", "done", "failed")
    ]
    if infra:
        what = "; ".join(h.action for h in infra)
        checks.append(
            f"Infra changes made in `{report.environment}` ({what}) live outside the code: "
            "carry the ones you keep into your infrastructure definitions, undo the others."
        )
    if report.status == "recovered":
        checks.append(
            "The symptoms cleared without a verified fix: no action is credited. Find out "
            "why it recovered before closing the incident; it may come back."
        )
    if report.status == "not-reproduced":
        checks.append(
            "rootloop could not reproduce the complaint (see what it checked); confirm it "
            "with whoever raised it."
        )
    leftovers = [h for h in ctx.history if h.failed and h.undo]
    for h in leftovers:
        checks.append(f"Iteration {h.iteration} did not help but is still applied; undo: {h.undo}")
    if report.diagnosis and report.diagnosis.confidence < 0.6:
        checks.append(
            f"The diagnosis confidence is only {report.diagnosis.confidence:.0%}: confirm the "
            "root cause before trusting the fix."
        )
    if report.status == "paused" and ctx.pending_gate:
        g = ctx.pending_gate
        checks.append(
            f"The run is paused at the `{g.gate}` gate ({g.reason}): approve with "
            f"`rootloop approve {ctx.run_id} --gate {g.gate}` or stop here."
        )
    elif report.status in ("escalated", "failed"):
        checks.append(
            "No verified fix: pick the investigation up from the findings and history below; "
            f"`rootloop resume {ctx.run_id}` continues after you act."
        )
    return checks
