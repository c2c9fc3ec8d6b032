"""What rootloop's MCP tools do, as plain typed operations (no MCP in here).

Each operation loads the map afresh (so an edited map is picked up without a
restart), returns a pydantic model, and passes everything it returns through
the map's redactor. Maps are named by path or by service; when the server was
started with maps (``-t``), only those can be named — a client cannot point
the server at another file or host.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from rootloop import topology as topology_mod
from rootloop.context import ContextStore, DebugContext
from rootloop.errors import StateError, UserError
from rootloop.models import Diagnosis, Finding, Status, worst
from rootloop.models.actions import Action, parse_action
from rootloop.reasoning.base import ReasoningInput
from rootloop.reasoning.rules import RulesReasoner
from rootloop.redact import Redactor, boundary
from rootloop.skills import registry
from rootloop.skills.base import CheckContext
from rootloop.state import state_dir
from rootloop.sweep import check_node as run_check
from rootloop.sweep import sweep as run_sweep
from rootloop.topology import Topology

M = TypeVar("M", bound=BaseModel)


class SweepResult(BaseModel):
    service: str
    environment: str
    overall: Status
    counts: dict[str, int]
    findings: list[Finding]


class GateView(BaseModel):
    """What the gatekeeper would decide for the proposed action (nothing is applied)."""

    decision: Literal["allow", "approval", "refuse"]
    gate: str = ""
    reason: str = ""


class DiagnoseResult(BaseModel):
    service: str
    overall: Status
    diagnosis: Diagnosis
    proposed_action: Action | None = None
    action_description: str | None = None
    gate: GateView | None = None
    rationale: str = ""
    escalate_reason: str | None = None
    findings: list[Finding]


class ReportResult(BaseModel):
    run_id: str
    source: Literal["pr.md", "built"]
    markdown: str


class RunSummary(BaseModel):
    run_id: str
    service: str
    environment: str
    status: str
    status_reason: str = ""
    iterations: int
    started_at: str


class HistoryHit(BaseModel):
    run_id: str
    service: str
    score: float
    snippet: str = ""
    root_cause: str | None = None
    category: str | None = None
    outcome: str | None = None


class HistoryResult(BaseModel):
    query: str
    hits: list[HistoryHit]


class ActionOutcome(BaseModel):
    decision: Literal["allow", "approval", "refuse"]
    applied: bool
    gate: str = ""
    reason: str = ""
    action: str
    run_id: str | None = None
    changed: str = ""
    undo: str = ""
    error: str | None = None
    next_step: str | None = None


class InvestigationResult(BaseModel):
    run_id: str
    status: str
    status_reason: str
    iterations: int
    pr: str | None = None
    report: str | None = None
    history: list[dict[str, Any]] = []


@dataclass
class ServerConfig:
    maps: list[Path] = field(default_factory=list)
    state_root: Path | None = None
    allow_actions: bool = False

    def __post_init__(self) -> None:
        self.maps = [Path(m).expanduser().resolve() for m in self.maps]
        missing = [str(m) for m in self.maps if not m.is_file()]
        if missing:
            raise UserError(f"map file(s) not found: {', '.join(missing)}")


def redacted(model: M, redactor: Redactor) -> M:
    """Every MCP answer passes through here on its way to the client."""
    return type(model).model_validate(redactor.data(model.model_dump(mode="json")))


class Toolbox:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config

    # -- maps ---------------------------------------------------------------------------
    @property
    def state_root(self) -> Path:
        if self.config.state_root is not None:
            return self.config.state_root
        start = self.config.maps[0].parent if self.config.maps else None
        return state_dir(start)

    def resolve_map(self, name: str | None) -> Path:
        maps = self.config.maps
        if not name:
            if maps:
                return maps[0]
            default = Path("rootloop.yaml").resolve()
            if default.is_file():
                return default
            raise UserError("no map given: pass 'map' (a path) or start the server with -t MAP")
        if not maps:
            path = Path(name).expanduser().resolve()
            if not path.is_file():
                raise UserError(f"map file {name} does not exist")
            return path
        path = Path(name).expanduser().resolve()
        for m in maps:
            if m == path or m.parent.name == name or m.stem == name or self._service(m) == name:
                return m
        known = ", ".join(str(m) for m in maps)
        raise UserError(f"map '{name}' is not one this server was started with ({known})")

    def _service(self, path: Path) -> str | None:
        try:
            return topology_mod.load(path, skills=registry).service
        except UserError:
            return None

    def load(self, name: str | None) -> tuple[Path, Topology]:
        path = self.resolve_map(name)
        return path, topology_mod.load(path, skills=registry)

    # -- read-only tools ------------------------------------------------------------------
    async def sweep(self, name: str | None) -> SweepResult:
        _, topo = self.load(name)
        findings = await run_sweep(
            topo.nodes.values(),
            CheckContext(redactor=topo.redactor),
            concurrency=topo.policy.concurrency,
        )
        result = SweepResult(
            service=topo.service,
            environment=topo.environment,
            overall=worst([f.status for f in findings]),
            counts={s.value: sum(f.status is s for f in findings) for s in Status},
            findings=findings,
        )
        return redacted(result, topo.redactor)

    async def check_node(self, name: str | None, node: str) -> Finding:
        _, topo = self.load(name)
        target = topo.nodes.get(node)
        if target is None:
            checks = topo.checks_of(node)
            if len(checks) == 1:
                target = checks[0]
            elif checks:
                names = ", ".join(c.name for c in checks)
                raise UserError(f"'{node}' has several checks; name one of: {names}")
        if target is None:
            close = difflib.get_close_matches(node, list(topo.nodes), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserError(
                f"no node '{node}' in {topo.service}'s map: {hint}nodes are "
                + ", ".join(sorted(topo.nodes))
            )
        ctx = CheckContext(redactor=topo.redactor)
        try:
            finding = await run_check(target, ctx)
        finally:
            await ctx.aclose()
        return redacted(finding, topo.redactor)

    async def diagnose(self, name: str | None) -> DiagnoseResult:
        """Sweep, then the rules reasoner; the proposed action is shown, never applied."""
        path, topo = self.load(name)
        swept = await self.sweep(str(path))
        context = DebugContext(
            service=topo.service, environment=topo.environment, topology_file=str(path)
        )
        proposal = RulesReasoner().propose_sync(ReasoningInput(topo, swept.findings, context))
        gate = None
        if proposal.action is not None:
            from rootloop.actions.gates import Gatekeeper

            d = Gatekeeper(topo).check(proposal.action, context, proposal.diagnosis.key)
            gate = GateView(decision=d.decision, gate=d.gate, reason=d.reason)
        result = DiagnoseResult(
            service=topo.service,
            overall=swept.overall,
            diagnosis=proposal.diagnosis,
            proposed_action=proposal.action,
            action_description=proposal.action.describe() if proposal.action else None,
            gate=gate,
            rationale=proposal.rationale,
            escalate_reason=proposal.escalate_reason,
            findings=swept.findings,
        )
        return redacted(result, topo.redactor)

    def store(self) -> ContextStore:
        return ContextStore(self.state_root)

    def _redactor_for(self, ctx: DebugContext) -> tuple[Redactor, Topology | None]:
        """The run's own map redactor when its map still loads; the pattern layer otherwise."""
        candidates = [ctx.topology_file] if ctx.topology_file else []
        candidates += [str(m) for m in self.config.maps]
        for candidate in candidates:
            try:
                topo = topology_mod.load(candidate, skills=registry)
            except UserError:
                continue
            if topo.service == ctx.service:
                return topo.redactor, topo
        return Redactor(), None

    def debug_context(self, run_id: str) -> DebugContext:
        ctx = self.store().load(run_id)
        redactor, _ = self._redactor_for(ctx)
        return redacted(ctx, redactor)

    def report(self, run_id: str) -> ReportResult:
        store = self.store()
        ctx = store.load(run_id)
        redactor, topo = self._redactor_for(ctx)
        body = store.run_dir(run_id) / "pr.md"
        if body.is_file():
            return ReportResult(
                run_id=run_id, source="pr.md", markdown=redactor.text(body.read_text("utf-8"))
            )
        if topo is None:
            raise StateError(
                f"run {run_id} has no pr.md yet and its map ({ctx.topology_file}) does not "
                "load here, so no report can be built"
            )
        from rootloop.report import build_report, render_pr_body

        report = build_report(ctx, topo, [], redactor=redactor)
        return ReportResult(
            run_id=run_id, source="built", markdown=render_pr_body(report, redactor)
        )

    def runs(self, limit: int = 50) -> list[RunSummary]:
        return [
            RunSummary(
                run_id=c.run_id,
                service=c.service,
                environment=c.environment,
                status=c.status,
                status_reason=Redactor().text(c.status_reason),
                iterations=c.iteration,
                started_at=c.started_at.isoformat(),
            )
            for c in self.store().list()[:limit]
        ]

    def search_history(self, query: str, k: int = 5, service: str | None = None) -> HistoryResult:
        from rootloop.memory import Memory

        root = None if os.environ.get("ROOTLOOP_MEMORY_DIR") else self.state_root / "memory"
        with Memory(root) as memory:
            hits = memory.search(query, k=k, service=service)
        clean = Redactor()
        return HistoryResult(
            query=query,
            hits=[
                HistoryHit(
                    run_id=h.run.run_id,
                    service=h.run.service,
                    score=round(h.score, 4),
                    snippet=clean.text(h.snippet),
                    root_cause=h.run.root_cause,
                    category=h.run.category,
                    outcome=h.run.status,
                )
                for h in hits
            ],
        )

    # -- acting tools (only registered with --allow-actions) ------------------------------
    async def apply_action(
        self, action: dict[str, Any], name: str | None, run_id: str | None = None
    ) -> ActionOutcome:
        from rootloop.mcpserver.acting import apply_gated

        try:
            parsed = parse_action(action)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "action"
            raise UserError(f"invalid action at '{where}': {err['msg']}") from None
        path, topo = self.load(name)
        outcome = await apply_gated(parsed, topo, path, self.store(), self.state_root, run_id)
        return redacted(outcome, boundary())

    async def run_investigation(self, name: str | None, reasoner: str) -> InvestigationResult:
        from rootloop.mcpserver.acting import investigate

        path = self.resolve_map(name)
        result = await investigate(path, self.state_root, reasoner)
        return redacted(result, boundary())
