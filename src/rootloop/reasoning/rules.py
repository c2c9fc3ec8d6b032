"""The deterministic reasoner: signatures → topology-aware ranking → runbook ladder.

Ranking prefers, in this order of weight: specific causal signatures over
generic symptoms (exit 137 over "HTTP 500"); a component that nothing below it
explains (its own callees are healthy); the target of a ``suspects`` pointer
(PostgreSQL blaming ``lambda-worker``); the earliest onset. The chosen
diagnosis then climbs the service's runbook ladder, skipping every rung that
already failed for the same diagnosis, in this run or in memory.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import networkx as nx

from rootloop.models import Candidate, Diagnosis, Finding, Status
from rootloop.models.actions import BaseAction
from rootloop.reasoning import categories as cat
from rootloop.reasoning import runbooks as rb
from rootloop.reasoning.base import Proposal, ReasoningInput
from rootloop.reasoning.signatures import Hit, match
from rootloop.topology import Topology

if TYPE_CHECKING:
    from rootloop.reasoning.usage import UsageLedger

UNHEALTHY = (Status.DEGRADED, Status.CRITICAL, Status.UNREACHABLE)


class RulesReasoner:
    name = "rules"
    ledger: UsageLedger | None = None  # calls no model
    reads_code = False

    def __init__(self, runbooks: rb.Runbooks | None = None) -> None:
        self._runbooks = runbooks

    def runbooks(self, topo: Topology) -> rb.Runbooks:
        if self._runbooks is None:
            self._runbooks = rb.load(topo.runbooks)
        return self._runbooks

    async def propose(self, inp: ReasoningInput) -> Proposal:
        return self.propose_sync(inp)

    def propose_sync(self, inp: ReasoningInput) -> Proposal:
        topo, findings = inp.topology, inp.findings
        hits = match(findings, topo)
        if not hits:
            return self._no_signature(inp)
        ranked = rank_hits(hits, findings, topo)
        best, score, group = ranked[0]
        diagnosis = Diagnosis(
            root_cause=best.component,
            category=best.category,
            summary=best.summary,
            confidence=round(min(0.99, score), 2),
            evidence=[line for h in group for line in h.evidence][:6],
            candidates=[
                Candidate(
                    node=h.component,
                    score=round(s, 3),
                    reasons=[f"{h.category}: {h.summary}", *h.preconditions],
                    evidence=h.evidence[:3],
                    onset=h.onset,
                )
                for h, s, _ in ranked[:5]
            ],
            path=symptom_path(topo, best.component),
            reasoner=self.name,
        )
        facts = gather_facts(topo, findings, best.component, group)
        action, skipped, rationale, rung = self.next_rung(inp, diagnosis, facts)
        if action is None:
            _src, ladder = self.runbooks(topo).ladder(
                [diagnosis.root_cause, topo.service], diagnosis.category
            )
            reason = (
                f"runbook ladder exhausted for {diagnosis.key}"
                + (f" ({'; '.join(skipped)})" if skipped else "")
                if ladder
                else f"runbook ladder exhausted for {diagnosis.key}: no runbook has a rung for it"
            )
            return Proposal(diagnosis=diagnosis, rationale=rationale, escalate_reason=reason)
        return Proposal(diagnosis=diagnosis, action=action, rationale=rationale, rung=rung)

    def next_rung(
        self, inp: ReasoningInput, diagnosis: Diagnosis, facts: dict[str, Any]
    ) -> tuple[BaseAction | None, list[str], str, str | None]:
        topo = inp.topology
        failed = inp.context.failed_fingerprints(diagnosis.key)
        failed |= inp.context.broken_fingerprints()
        failed_rungs = inp.context.failed_rungs(diagnosis.key)
        failed |= {
            fa.fingerprint for fa in inp.prior.failed_actions if fa.diagnosis_key == diagnosis.key
        }
        defaults = {
            "target": diagnosis.root_cause,
            "reason": diagnosis.summary,
            "cluster": facts.get("cluster"),
            "service": facts.get("service"),
        }
        defaults = {k: v for k, v in defaults.items() if v is not None}
        services = [diagnosis.root_cause, topo.service]
        skipped: list[str] = []
        for rung in self.runbooks(topo).rungs(services, diagnosis.category, facts, defaults):
            if rung.action is None:
                skipped.append(f"{rung.source} needs {', '.join(rung.missing)}")
                continue
            if rung.action.fingerprint() in failed or rung.source in failed_rungs:
                skipped.append(f"{rung.source} already failed")
                continue
            return rung.action, skipped, f"runbook {rung.source}", rung.source
        return None, skipped, "no runbook rung left", None

    def _no_signature(self, inp: ReasoningInput) -> Proposal:
        """No signature's preconditions hold: rootloop does not act. It names its top
        suspects (ranked as ``rank_suspects`` explains), each with its evidence, onset
        and what it would try, so a human starts from there."""
        topo = inp.topology
        bad = [f for f in inp.findings if f.status in UNHEALTHY]
        if not bad:
            d = Diagnosis(
                root_cause=topo.service,
                category="healthy",
                summary="every node is healthy",
                confidence=0.9,
                reasoner=self.name,
            )
            return Proposal(diagnosis=d, rationale="nothing to fix")
        suspects = rank_suspects(topo, inp.findings)
        for c in suspects:
            c.would_try = self.would_try(topo, c.node)
        root = suspects[0].node
        worst_status = max(
            (f.status for f in bad if _component(topo, f.node) == root), key=lambda st: st.severity
        )
        d = Diagnosis(
            root_cause=root,
            category=cat.UNKNOWN,
            summary=f"{root} is {worst_status.value}; no signature's preconditions hold",
            confidence=0.3,
            evidence=[f"{f.node}: {f.summary}" for f in bad][:6],
            candidates=suspects[:5],
            path=symptom_path(topo, root),
            reasoner=self.name,
        )
        return Proposal(
            diagnosis=d,
            rationale="no signature matched",
            escalate_reason="no signature's preconditions hold: rootloop does not act; "
            f"top suspects: {', '.join(c.node for c in suspects[:3])}",
        )

    def would_try(self, topo: Topology, component: str) -> str:
        """What a human could try first: the component's runbook ladders, which rootloop
        itself runs only once a signature's preconditions hold."""
        books = self.runbooks(topo)
        known = [
            f"{category}: {ladder[0].get('kind', '?')}"
            for category in cat.ALL
            for _svc, ladder in [books.ladder([component], category)]
            if ladder and _svc == component
        ]
        checks = ", ".join(sorted({n.skill for n in topo.checks_of(component)})) or "no check"
        first = f"look at {component}'s own checks ({checks}) and its recent changes"
        return first + (f"; its runbook knows {'; '.join(known)}" if known else "")


def _component(topo: Topology, node: str) -> str:
    found = topo.nodes.get(node)
    return found.component if found else node


def rank_suspects(topo: Topology, findings: list[Finding]) -> list[Candidate]:
    """Unhealthy components ranked as root-cause suspects, from findings alone.

    The same principle as ``rank.rank_root_causes`` (which needs metric series): a fault
    shows where it lives and climbs towards the callers. So: first the components with
    nothing unhealthy below them (a root, not a victim); among those, the one that
    explains more unhealthy callers, then the earliest onset, then the worst status.
    """
    comp: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.status in UNHEALTHY:
            comp[_component(topo, f.node)].append(f)
    unhealthy = set(comp)
    never = datetime.max.replace(tzinfo=UTC)

    def facts(c: str) -> tuple[bool, int, datetime, int]:
        """(a root: nothing unhealthy below, unhealthy callers it explains, onset, severity)"""
        fs = comp[c]
        callers = nx.ancestors(topo.graph, c) & unhealthy if c in topo.graph else set()
        onsets = [_aware(f.anomaly_started_at) for f in fs if f.anomaly_started_at]
        severity = max(f.status.severity for f in fs)
        return (
            bool(_explains(topo, c, unhealthy)),
            len(callers),
            min(onsets, default=never),
            severity,
        )

    def order(c: str) -> tuple[bool, int, datetime, int, str]:
        root, callers, onset, severity = facts(c)
        return (not root, -callers, onset, -severity, c)

    out = []
    for i, c in enumerate(sorted(unhealthy, key=order)):
        fs = sorted(comp[c], key=lambda f: -f.status.severity)
        root, callers, onset, _severity = facts(c)
        reasons = [
            "nothing unhealthy below it: the anomaly may start here"
            if root
            else "an unhealthy dependency below it: it may be a victim"
        ]
        if callers:
            reasons.append(f"explains {callers} unhealthy caller(s)")
        evidence = [f"{f.node} ({f.skill}): {f.status.value}: {f.summary}" for f in fs][:3]
        evidence += [f"{f.node}: {s}" for f in fs for s in f.signals if s.status in UNHEALTHY][:3]
        out.append(
            Candidate(
                node=c,
                score=round(1 / (i + 1), 3),
                reasons=reasons,
                evidence=evidence,
                onset=None if onset == never else onset,
            )
        )
    return out


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _explains(topo: Topology, component: str, unhealthy: set[str]) -> int:
    """1 when none of the component's own dependencies is unhealthy: nothing below explains it."""
    if component not in topo.graph:
        return 1
    below = nx.descendants(topo.graph, component)
    return 0 if below & unhealthy else 1


def rank_hits(
    hits: list[Hit], findings: list[Finding], topo: Topology
) -> list[tuple[Hit, float, list[Hit]]]:
    """Best (component, category) first, with its score and every hit that supports it."""
    groups: dict[tuple[str, str], list[Hit]] = defaultdict(list)
    for h in hits:
        groups[(h.component, h.category)].append(h)
    hit_components = {h.component for h in hits if h.specificity >= 0.6}
    onsets = [h.onset for h in hits if h.onset is not None]
    earliest = min(onsets) if onsets else None
    scored = []
    for (component, _category), group in groups.items():
        best = max(group, key=lambda h: h.specificity)
        score = best.specificity
        score += 0.05 * min(len(group) - 1, 2)  # corroborated by other checks
        if _explains(topo, component, hit_components - {component}):
            score += 0.05
        if earliest is not None and best.onset is not None and best.onset == earliest:
            score += 0.02
        scored.append((best, score, group))
    return sorted(scored, key=lambda t: (-t[1], t[0].component))


def symptom_path(topo: Topology, root: str) -> list[str]:
    """Nodes from the service (where symptoms show) to the root cause."""
    g = topo.graph
    if root not in g or topo.service not in g:
        return [topo.service, root] if root != topo.service else [root]
    try:
        path: list[str] = nx.shortest_path(g, topo.service, root)
        return path
    except nx.NetworkXNoPath:
        try:
            path = nx.shortest_path(g.to_undirected(as_view=True), topo.service, root)
            return path
        except nx.NetworkXNoPath:
            return [topo.service, root]


def gather_facts(
    topo: Topology, findings: list[Finding], component: str, group: list[Hit]
) -> dict[str, Any]:
    """Facts a runbook rung may use: from the hits, then from the component's checks."""
    facts: dict[str, Any] = {}
    for h in group:
        facts.update({k: v for k, v in h.facts.items() if v is not None})
    for node in topo.checks_of(component):
        s = node.settings
        for key, attr in (
            ("cluster", "cluster"),
            ("service", "service"),
            ("function_name", "function_name"),
        ):
            value = getattr(s, attr, None)
            if value and key not in facts:
                facts[key] = value
    by_node = {f.node: f for f in findings}
    for node in topo.checks_of(component):
        f = by_node.get(node.name)
        if f is None:
            continue
        mem = f.value("task_memory_mb") or f.value("task_memory")
        if isinstance(mem, int | float) and "memory" not in facts:
            facts["memory"], facts["memory_x2"] = int(mem), int(mem) * 2
        commit = f.value("deployed_commit")
        if commit and "bad_commit" not in facts and component == topo.service:
            facts.setdefault("deployed_commit", commit)
    facts.setdefault("app", component)
    facts.setdefault(
        "function_name",
        component if any(n.skill == "aws-lambda" for n in topo.checks_of(component)) else None,
    )
    return {k: v for k, v in facts.items() if v is not None}


def onset(findings: list[Finding]) -> datetime | None:
    times = [f.anomaly_started_at for f in findings if f.anomaly_started_at]
    return min(times) if times else None
