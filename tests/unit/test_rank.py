"""The metrics ranker on small call graphs (edges caller → callee)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from rootloop.reasoning.rank import NodeMetrics, RankConfig, metric_direction, rank_root_causes

RNG = np.random.default_rng(11)
LAT = "latency:Average"


def _baseline(nodes: list[str]) -> NodeMetrics:
    return {n: {LAT: 0.1 + RNG.normal(0, 0.005, 200)} for n in nodes}


def _window(nodes: list[str], bad: dict[str, list[float]]) -> NodeMetrics:
    """Normal latency for every node, except the given per-step values."""
    out: NodeMetrics = {}
    for n in nodes:
        out[n] = {LAT: np.array(bad[n]) if n in bad else 0.1 + RNG.normal(0, 0.005, 6)}
    return out


def _chain() -> tuple[nx.DiGraph, list[str]]:
    # web → api → svc → db, plus a healthy side branch web → cache
    g = nx.DiGraph([("web", "api"), ("api", "svc"), ("svc", "db"), ("web", "cache")])
    return g, list(g.nodes)


SLOW = [0.1, 0.1, 0.5, 0.6, 0.6, 0.55]


def test_root_cause_three_hops_away_is_ranked_first() -> None:
    g, nodes = _chain()
    inc = _window(nodes, {n: SLOW for n in ("web", "api", "svc", "db")})
    ranked = rank_root_causes(g, "web", LAT, _baseline(nodes), inc)
    assert ranked[0].node == "db"
    assert {c.node for c in ranked} == {"web", "api", "svc", "db"}
    assert "cache" not in {c.node for c in ranked}
    assert any("starts here" in r for r in ranked[0].reasons)


def test_victim_with_an_abnormal_callee_is_not_first() -> None:
    g, nodes = _chain()
    # svc is slow and so is its callee db; web/api slow too: svc is only a victim
    inc = _window(
        nodes, {"web": SLOW, "api": SLOW, "svc": [0.1, 0.1, 2.0, 2.0, 2.0, 2.0], "db": SLOW}
    )
    ranked = rank_root_causes(g, "web", LAT, _baseline(nodes), inc)
    assert ranked[0].node == "db"
    assert ranked[0].score > next(c.score for c in ranked if c.node == "svc")


def test_all_normal_window_returns_nothing() -> None:
    g, nodes = _chain()
    assert rank_root_causes(g, "web", LAT, _baseline(nodes), _window(nodes, {})) == []


def test_abnormal_callee_but_normal_symptom_returns_nothing() -> None:
    g, nodes = _chain()
    inc = _window(nodes, {"db": SLOW})
    assert rank_root_causes(g, "web", LAT, _baseline(nodes), inc) == []


def test_an_abnormal_symptom_alone_is_not_named_as_its_own_cause() -> None:
    g, nodes = _chain()
    ranked = rank_root_causes(g, "web", LAT, _baseline(nodes), _window(nodes, {"web": SLOW}))
    assert ranked == []


def test_symptom_is_its_own_cause_when_another_of_its_metrics_says_so() -> None:
    g, nodes = _chain()
    base, inc = _baseline(nodes), _window(nodes, {"web": SLOW})
    cpu = "cpu:Average"
    for n in nodes:
        base[n][cpu] = 30 + RNG.normal(0, 1, 200)
        inc[n][cpu] = 30 + RNG.normal(0, 1, 6)
    assert rank_root_causes(g, "web", LAT, base, inc) == []  # normal cpu: still no evidence
    inc["web"][cpu] = np.array([30, 31, 95, 97, 96, 98.0])
    ranked = rank_root_causes(g, "web", LAT, base, inc)
    assert [c.node for c in ranked] == ["web"]


def test_a_callee_abnormal_at_another_time_than_the_symptom_is_not_blamed() -> None:
    g = nx.DiGraph([("web", "db"), ("web", "cache")])
    nodes = list(g.nodes)
    late = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.6, 0.6, 0.6, 0.6]
    early = [0.6, 0.6, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    inc = {n: {LAT: 0.1 + RNG.normal(0, 0.005, 12)} for n in nodes}
    inc["web"][LAT], inc["db"][LAT] = np.array(late), np.array(early)
    assert rank_root_causes(g, "web", LAT, _baseline(nodes), inc) == []
    inc["db"][LAT] = np.array(late)  # the same steps: now it explains the symptom
    assert rank_root_causes(g, "web", LAT, _baseline(nodes), inc)[0].node == "db"


def test_node_without_data_is_passed_through_not_blamed() -> None:
    g, nodes = _chain()
    base = _baseline(nodes)
    inc = _window(nodes, {"web": SLOW, "api": SLOW, "db": SLOW})
    del base["svc"], inc["svc"]  # svc has no metrics at all
    ranked = rank_root_causes(g, "web", LAT, base, inc)
    assert ranked[0].node == "db"
    assert "svc" not in {c.node for c in ranked}


def test_standing_deviation_present_before_the_incident_is_not_blamed() -> None:
    g, nodes = _chain()
    # db has been slow since before the window and does not get worse; svc breaks at step 2
    inc = _window(
        nodes,
        {"web": SLOW, "api": SLOW, "svc": SLOW, "db": [0.3, 0.3, 0.3, 0.3, 0.3, 0.3]},
    )
    ranked = rank_root_causes(g, "web", LAT, _baseline(nodes), inc)
    assert ranked[0].node == "svc"


def test_availability_drop_is_found_with_direction_down() -> None:
    g = nx.DiGraph([("web", "pay")])
    av = "availability:Average"
    base = {n: {av: np.full(100, 100.0)} for n in g}
    inc = {
        "web": {av: np.array([100, 100, 95, 94, 96.0])},
        "pay": {av: np.array([100, 100, 80, 75, 85.0])},
    }
    assert metric_direction(av) == "down"
    ranked = rank_root_causes(g, "web", av, base, inc)
    assert ranked[0].node == "pay"
    # an availability *rise* is not an incident
    up = {"web": {av: np.full(5, 100.0)}, "pay": {av: np.full(5, 100.0)}}
    assert rank_root_causes(g, "web", av, base, up) == []


def test_unknown_symptom_or_metric_is_a_clear_error() -> None:
    g, nodes = _chain()
    base, inc = _baseline(nodes), _window(nodes, {})
    with pytest.raises(ValueError, match="not in the call graph"):
        rank_root_causes(g, "nope", LAT, base, inc)
    with pytest.raises(ValueError, match="no series"):
        rank_root_causes(g, "web", "cpu:Max", base, inc)


def test_config_metrics_restricts_what_is_scored() -> None:
    g, nodes = _chain()
    inc = _window(nodes, {n: SLOW for n in ("web", "api", "svc", "db")})
    for n in nodes:
        inc[n]["errors:Sum"] = np.zeros(6)
    cfg = RankConfig(metrics=(LAT,))
    assert rank_root_causes(g, "web", LAT, _baseline(nodes), inc, cfg)[0].node == "db"
