"""Slow dependency: latency, not errors, found through the graph.

A dependency that answers slowly makes every caller above it slow too (they wait for
it), so latency alone climbs the call graph the way errors do. The root is the
deepest slow node: one whose checks judged only latency bad (it answers, and answers
correctly — no error status, no failed requests) and whose own dependencies are all
fine. Callers with a slow dependency below them are victims, never the root.
"""

from __future__ import annotations

import re

import networkx as nx

from rootloop.models import Finding, Signal, Status
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import Hit, bad, component_of
from rootloop.topology import Topology

# signals that measure time taken: latency_ms, ping_ms, p95_ms, p99, duration…
LATENCY_SIGNAL = re.compile(r"latency|ping_ms|(?:^|_)p\d{2}(?:_|$)|duration", re.I)


def _bad(s: Signal) -> bool:
    return s.status in (Status.DEGRADED, Status.CRITICAL)


def only_slow(f: Finding) -> bool:
    """The check judged the node bad for latency and for nothing else: it answered."""
    if not bad(f) or f.status is Status.UNREACHABLE:
        return False
    judged = [s for s in f.signals if _bad(s)]
    return bool(judged) and all(LATENCY_SIGNAL.search(s.name) for s in judged)


def slow_dependency(findings: list[Finding], topo: Topology) -> list[Hit]:
    """Preconditions, all of them:
    - a check of the node judged a latency signal bad, and every signal it judged bad
      is a latency signal (no error status, no failed requests: slow, not failing);
    - no check of the node is unhealthy for any other reason;
    - the node is a dependency: some component of the map calls it;
    - nothing below it in the graph is unhealthy (slow or failing): it is the deepest.
    """
    graph = topo.graph
    by_component: dict[str, list[Finding]] = {}
    for f in findings:
        by_component.setdefault(component_of(f, topo), []).append(f)
    unhealthy = {c for c, fs in by_component.items() if any(bad(f) for f in fs)}
    hits = []
    for comp, fs in by_component.items():
        slow = [f for f in fs if only_slow(f)]
        if not slow or any(bad(f) and not only_slow(f) for f in fs):
            continue
        if comp not in graph or not any(True for _ in graph.predecessors(comp)):
            continue
        below = nx.descendants(graph, comp) & unhealthy
        if below:
            continue
        lines = [
            f"{f.node}: {s.name}={s.value}{s.unit} (threshold {s.threshold})"
            for f in slow
            for s in f.signals
            if _bad(s)
        ]
        callers = sorted(graph.predecessors(comp))
        hits.append(
            Hit(
                comp,
                cat.SLOW_DEPENDENCY,
                0.75,
                f"{comp} answers slowly (latency, not errors); {', '.join(callers)} wait on it",
                {},
                lines[:3],
                min((f.anomaly_started_at for f in slow if f.anomaly_started_at), default=None),
                slow[0].node,
                [
                    "only latency is judged bad: it answers, slowly",
                    f"called by {', '.join(callers)}",
                    "nothing it depends on is unhealthy: it is the deepest slow node",
                ],
            )
        )
    return hits


CROSS_SIGNATURES = [slow_dependency]
