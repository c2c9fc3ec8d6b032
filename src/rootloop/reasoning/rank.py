"""Metrics-based root-cause ranking on a call graph (edges caller → callee).

Why this shape: a fault shows first where it lives and then climbs the call graph towards
the callers, so the symptom is rarely the cause. From the symptom we walk towards callees
through nodes that are themselves abnormal; a node that is abnormal while all its callees are
normal has nothing below it to blame and is a root; a node with an abnormal callee is more
likely a victim. Among roots, the one that explains more of the abnormal callers, started
earlier and deviates more comes first. Nothing abnormal at the symptom → no candidate at all.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import networkx as nx
import numpy as np

from rootloop.analysis.anomaly import DEFAULT_THRESHOLD, AnomalyScore, Direction, score_series
from rootloop.models import Candidate

NodeMetrics = dict[str, dict[str, np.ndarray]]
"""node → metric name → series (one value per time step, NaN where missing)."""

_UP = ("latency", "duration", "error", "fault", "throttl", "timeout", "cpu", "memory", "queue")
_DOWN = ("availability", "success", "healthy", "uptime", "apdex")


def metric_direction(metric: str) -> Direction:
    """Which way of a metric hurts, from its name: latency up, availability down, else both."""
    name = metric.lower()
    if any(k in name for k in _DOWN):
        return "down"
    if any(k in name for k in _UP):
        return "up"
    return "both"


@dataclass(frozen=True)
class RankConfig:
    """One configuration for every system; nothing here is tuned per incident."""

    threshold: float = DEFAULT_THRESHOLD
    min_run: int = 2
    """Consecutive abnormal points needed: one noisy sample is not an incident."""
    metrics: tuple[str, ...] | None = None
    """Metric names considered on every node; None = every metric the node has."""
    max_candidates: int = 10
    direction: Callable[[str], Direction] = metric_direction
    symptom_threshold: float = 1.5
    """A symptom that only peaks (no sustained run) counts when it reaches this robust z at a
    time when something below it is abnormal: the alarm fired, the cause holds the evidence.
    Chosen on the PetShop "tune" fold (flat from 1.0 to 1.75), checked on the other fold."""
    standing_rise: float = 1.5
    """A deviation present from the first sample counts only if it grows this much at onset
    (any value from 1.25 to 3 scores the same on both folds)."""
    explain_weight: float = 1.0
    max_explained: int = 5
    saturation: float = 4.0
    """Beyond this many thresholds a deviation is simply "large": z 40 vs z 90 says nothing
    (2 to 4 score the same on the tune fold, 8 and no cap lose issues)."""
    onset_weight: float = 0.25
    """Started before the symptom: a small plus (no measurable effect on PetShop)."""


@dataclass(frozen=True)
class NodeAnomaly:
    """A node's most abnormal metric."""

    node: str
    metric: str
    score: AnomalyScore

    @property
    def abnormal(self) -> bool:
        return self.score.abnormal


@dataclass
class _Scored:
    node: str
    anomaly: NodeAnomaly
    root: bool
    explained: int
    abnormal_callees: list[str] = field(default_factory=list)
    reach: int = 0
    value: float = 0.0


def score_nodes(
    baseline: NodeMetrics, incident: NodeMetrics, config: RankConfig
) -> dict[str, NodeAnomaly]:
    """The most abnormal metric of each node that has data in both windows."""
    out: dict[str, NodeAnomaly] = {}
    for node, series in incident.items():
        base = baseline.get(node, {})
        best: NodeAnomaly | None = None
        for metric, values in series.items():
            if config.metrics is not None and metric not in config.metrics:
                continue
            if metric not in base:
                continue
            s = score_series(
                base[metric],
                values,
                config.direction(metric),
                threshold=config.threshold,
                min_run=config.min_run,
            )
            if s.insufficient:
                continue
            if best is None or s.score > best.score.score:
                best = NodeAnomaly(node, metric, s)
        if best is not None:
            out[node] = best
    return out


def _reach(
    graph: nx.DiGraph, start: str, passable: Callable[[str], bool], forward: bool
) -> set[str]:
    """Nodes reachable from ``start`` through passable nodes (start excluded)."""
    step = graph.successors if forward else graph.predecessors
    seen: set[str] = set()
    todo = deque([start])
    while todo:
        for nxt in step(todo.popleft()):
            if nxt not in seen and nxt != start and passable(nxt):
                seen.add(nxt)
                todo.append(nxt)
    return seen


def rank_root_causes(
    graph: nx.DiGraph,
    symptom: str,
    symptom_metric: str,
    baseline: NodeMetrics,
    incident: NodeMetrics,
    config: RankConfig | None = None,
) -> list[Candidate]:
    """Ranked root-cause candidates for an abnormal ``symptom_metric`` on ``symptom``.

    Returns ``[]`` when the symptom metric is not abnormal. Raises ``ValueError`` when the
    symptom is not in the graph or has no data for ``symptom_metric``.
    """
    cfg = config or RankConfig()
    if symptom not in graph:
        raise ValueError(f"symptom node {symptom!r} is not in the call graph")
    try:
        base_s, inc_s = baseline[symptom][symptom_metric], incident[symptom][symptom_metric]
    except KeyError:
        raise ValueError(f"no series {symptom_metric!r} for symptom {symptom!r}") from None
    sym = score_series(
        base_s,
        inc_s,
        cfg.direction(symptom_metric),
        threshold=cfg.threshold,
        min_run=cfg.min_run,
    )
    anomalies = score_nodes(baseline, incident, cfg)
    anomalies[symptom] = NodeAnomaly(symptom, symptom_metric, sym)
    sym_onset = sym.onset_index if sym.abnormal else _first_at(sym.zscores, cfg.symptom_threshold)
    if sym_onset is None:
        return []
    # The symptom's active steps: where it reaches the (weak) symptom level, widened by one
    # step for sampling jitter. A cause is abnormal while the symptom is, not elsewhere.
    active = _widen(np.nan_to_num(sym.zscores, nan=-np.inf) >= cfg.symptom_threshold)
    abnormal = {
        n
        for n, a in anomalies.items()
        if a.abnormal
        and n != symptom
        and not _standing(a.score, sym_onset, cfg)
        and _coincides(a.score, active, cfg.min_run)
    }

    def passable(n: str) -> bool:  # nodes without data neither block nor get blamed
        return n in abnormal or n not in anomalies

    below = _reach(graph, symptom, passable, forward=True) & abnormal
    if not below and not _self_evidence(
        symptom, symptom_metric, baseline, incident, sym_onset, cfg
    ):
        return []  # an abnormal symptom alone says "something is wrong", not "it is here"
    if not sym.abnormal:
        # a symptom that only peaked counts when something below it was abnormal right then
        sym = replace(sym, abnormal=True, onset_index=sym_onset)
        anomalies[symptom] = NodeAnomaly(symptom, symptom_metric, sym)
    abnormal.add(symptom)
    reached = below | {symptom}
    scored = [_score(graph, n, anomalies, abnormal, passable) for n in reached]
    for s in scored:
        _value(s, sym_onset, cfg)
    # Ties (two saturated roots explaining as much) go to the node more of the graph depends
    # on: a shared service is the likelier cause than an endpoint only one caller sees.
    scored.sort(key=lambda s: (-s.value, -s.reach, s.node))
    return [_candidate(s) for s in scored[: cfg.max_candidates]]


def _self_evidence(
    node: str,
    symptom_metric: str,
    baseline: NodeMetrics,
    incident: NodeMetrics,
    symptom_onset: int,
    cfg: RankConfig,
) -> bool:
    """Another of the symptom node's own metrics is abnormal the harmful way: evidence the
    fault is there (a traffic change, which has no harmful way, is load, not a fault).

    The symptom metric cannot be its own evidence: on a busy system the watched metric
    strays now and then with nothing broken, and a ranker that then names the symptom node
    blames the one place it was told to look.
    """
    others = {
        m: v
        for m, v in incident.get(node, {}).items()
        if m != symptom_metric and cfg.direction(m) != "both"  # traffic moves are not faults
    }
    if not others:
        return False
    found = score_nodes({node: baseline.get(node, {})}, {node: others}, cfg).get(node)
    return found is not None and found.abnormal and not _standing(found.score, symptom_onset, cfg)


def _first_at(z: np.ndarray, level: float) -> int | None:
    hits = np.flatnonzero(np.nan_to_num(z, nan=-np.inf) >= level)
    return int(hits[0]) if hits.size else None


def _standing(a: AnomalyScore, symptom_onset: int, cfg: RankConfig) -> bool:
    """Abnormal from the first sample, before the symptom, and no worse once the symptom starts.

    Such a deviation was there before this incident (a drifted baseline, a known slow
    dependency); blaming it would explain every incident and therefore none.
    """
    z = np.nan_to_num(a.zscores, nan=-np.inf)
    if symptom_onset <= 0 or z.size <= symptom_onset or z[0] < a.threshold:
        return False
    return float(z[symptom_onset:].max()) < cfg.standing_rise * float(z[:symptom_onset].max())


def _widen(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    return out


def _coincides(a: AnomalyScore, active: np.ndarray, min_run: int) -> bool:
    """Some run of ``min_run`` abnormal steps of ``a`` touches the symptom's active steps."""
    z = np.nan_to_num(a.zscores, nan=-np.inf) >= a.threshold
    n = min(z.size, active.size)
    run = 0
    for i in range(z.size):
        run = run + 1 if z[i] else 0
        if run >= min_run and active[max(0, i - run + 1) : min(i + 1, n)].any():
            return True
    return False


def _score(
    graph: nx.DiGraph,
    node: str,
    anomalies: Mapping[str, NodeAnomaly],
    abnormal: set[str],
    passable: Callable[[str], bool],
) -> _Scored:
    below = _reach(graph, node, passable, forward=True) & abnormal
    callees = sorted(c for c in graph.successors(node) if c in abnormal)
    explained = len(_reach(graph, node, passable, forward=False) & abnormal)
    return _Scored(
        node,
        anomalies[node],
        root=not below,
        explained=explained,
        abnormal_callees=callees,
        reach=len(nx.ancestors(graph, node)),
    )


def _value(s: _Scored, symptom_onset: int, cfg: RankConfig) -> None:
    a = s.anomaly.score
    magnitude = math.log1p(min(a.score / cfg.threshold, cfg.saturation))
    onset = a.onset_index if a.onset_index is not None else symptom_onset
    lead = max(-2, min(2, symptom_onset - onset))  # started before the symptom: plausible cause
    s.value = (
        (10.0 if s.root else 0.0)
        + magnitude
        + cfg.explain_weight * min(s.explained, cfg.max_explained)
        + cfg.onset_weight * lead
    )


def _candidate(s: _Scored) -> Candidate:
    a = s.anomaly
    sc = a.score
    reasons = [
        f"{a.metric} abnormal: robust z {sc.score:.1f} (baseline median "
        f"{sc.baseline_median:.4g}, incident median {sc.incident_median:.4g})"
    ]
    if s.root:
        reasons.append("no abnormal dependency below it: the anomaly starts here")
    else:
        reasons.append("abnormal callees below it: " + ", ".join(s.abnormal_callees[:5]))
    if s.explained:
        reasons.append(f"explains {s.explained} abnormal caller(s) upstream")
    if a.score.onset_index is not None:
        reasons.append(f"onset at incident step {a.score.onset_index}")
    return Candidate(node=s.node, score=round(s.value, 4), reasons=reasons)
