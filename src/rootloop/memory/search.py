"""Pieces of hybrid search: the query a sweep's findings make, and rank fusion."""

from __future__ import annotations

from collections.abc import Sequence

from rootloop.models import Finding, Status

RRF_K = 60


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: each list adds 1/(k + rank); best fused score first.

    Ties keep the order of first appearance, so with one list the order is that list's.
    """
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(dict.fromkeys(x for r in rankings for x in r))}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def query_from_findings(findings: list[Finding], limit: int = 8) -> str:
    """Words that describe what is wrong now: unhealthy nodes, their summaries and signals."""
    bad = sorted(
        (f for f in findings if f.status is not Status.OK),
        key=lambda f: f.status.severity,
        reverse=True,
    )[:limit]
    parts: list[str] = []
    for f in bad:
        parts.append(f"{f.node} {f.summary}")
        for s in f.signals:
            if s.status is not Status.OK:
                parts.append(f"{s.name} {s.value}")
        if f.error:
            parts.append(f.error)
    return " ".join(parts)
