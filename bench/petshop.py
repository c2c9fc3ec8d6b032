"""Root-cause ranking on the PetShop dataset, with its authors' protocol.

Usage: .venv/bin/python bench/petshop.py ../shared/data/petshop/low_traffic [--metrics M] [-v]
       [--fold tune|check] [--set name=value ...]

For every issue in ``test/`` and ``train/`` (each when present) the ranker receives the call
graph, the target node and metric, the no-issue metrics as the baseline and the issue's
metrics as the incident window, and returns ranked candidates. Top-k recall (k = 1, 3) is
the share of issues whose true root cause is among the k best. Specificity (when
``noissue/`` exists): the no-issue metrics are split from half way in steps of 10% of their
length into a normal and an "abnormal" part; the ranker is right when it returns nothing.
Ground truth (``root_cause``) is read only to score the answer, never passed to the ranker;
``metadata.reproducibility`` is never read.

The published baseline printed is the one of the regime run (the directory's name), and none
for a regime whose published figures are not recorded here. ``--fold`` scores only the issues
whose root cause falls in that half (``FOLDS``), for choosing constants on one half and
checking them on the other; ``--set`` overrides a ``RankConfig`` field for such a study.

Data: PetShop (amazon-science, CC-BY-4.0), arXiv 2311.04806.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from rootloop.reasoning.rank import NodeMetrics, RankConfig, rank_root_causes

OVERRIDES: dict[str, float | int] = {}  # --set, for design studies only

PUBLISHED = {  # the authors' anomaly traversal (MAD scorer, threshold 5), per regime
    "low_traffic": {
        "latency": (0.571, 0.571, 0.167),
        "availability": (0.833, 1.000, 1.000),
    },
}

# Halves of the issues by root-cause component, so a constant chosen on one half is checked
# on faults of components it never saw. The ground truth decides only the fold and the score.
FOLDS = {
    "tune": ("PetSearch", "petInfo", "petlistadoptions"),
    "check": ("lambdastatusupdater", "payforadoption"),
}


@dataclass
class Window:
    timestamps: np.ndarray
    metrics: NodeMetrics

    def slice(self, start: int, stop: int | None = None) -> Window:
        cut = {n: {m: v[start:stop] for m, v in ms.items()} for n, ms in self.metrics.items()}
        return Window(self.timestamps[start:stop], cut)


def load_graph(path: Path) -> nx.DiGraph:
    """Adjacency matrix CSV: row → column is an edge caller → callee."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0][1:]
    g = nx.DiGraph()
    g.add_nodes_from(header)
    for row in rows[1:]:
        g.add_node(row[0])
        for callee, cell in zip(header, row[1:], strict=True):
            if cell.strip() and float(cell) != 0.0:
                g.add_edge(row[0], callee)
    return g


def load_metrics(path: Path) -> Window:
    """Three header rows (node, metric, statistic), a timestamp row label, then one row per step.

    Metric names become ``"<metric>:<statistic>"``, e.g. ``latency:Average``.
    """
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    nodes, metrics, stats = rows[0], rows[1], rows[2]
    data = [r for r in rows[3:] if r and r[0] and _is_number(r[0])]
    ts = np.array([float(r[0]) for r in data])
    out: NodeMetrics = {}
    for j in range(1, len(nodes)):
        col = np.array([float(r[j]) if r[j].strip() else np.nan for r in data])
        out.setdefault(nodes[j], {})[f"{metrics[j]}:{stats[j]}"] = col
    return Window(ts, out)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _select(cfg_metrics: str, metric: str, stat: str) -> tuple[str, ...] | None:
    if cfg_metrics == "target":
        return (f"{metric}:{stat}",)
    if cfg_metrics == "kind":
        return tuple(f"{metric}:{s}" for s in ("Average", "p50", "p90", "p95", "p99", "Sum"))
    return None


def in_fold(truth: str, fold: str | None) -> bool:
    """Whether an issue with root cause ``truth`` belongs to ``fold`` (None: every issue)."""
    if fold is None:
        return True
    return truth.split("_")[0] in FOLDS[fold]


def evaluate_issues(
    root: Path,
    split: str,
    graph: nx.DiGraph,
    normal: Window,
    cfg_metrics: str,
    verbose: bool,
    fold: str | None = None,
) -> dict[str, list[tuple[bool, bool]]]:
    """metric kind → list of (in top 1, in top 3), one per issue."""
    results: dict[str, list[tuple[bool, bool]]] = {}
    for issue in sorted((root / split).iterdir(), key=lambda p: (len(p.name), p.name)):
        if not (issue / "target.json").exists():
            continue
        spec = json.loads((issue / "target.json").read_text())
        if not in_fold(spec["root_cause"]["node"], fold):
            continue
        target = spec["target"]
        metric, stat = target["metric"], target.get("agg", "Average")
        incident = load_metrics(issue / "metrics.csv")
        cfg = RankConfig(metrics=_select(cfg_metrics, metric, stat), **OVERRIDES)
        ranked = rank_root_causes(
            graph, target["node"], f"{metric}:{stat}", normal.metrics, incident.metrics, cfg
        )
        truth = spec["root_cause"]["node"]  # scoring only
        top = [c.node for c in ranked]
        hit = (truth in top[:1], truth in top[:3])
        results.setdefault(metric, []).append(hit)
        if verbose:
            mark = "ok " if hit[0] else ("top3" if hit[1] else "MISS")
            print(f"  {split}/{issue.name:9} {metric:12} {mark} truth={truth} got={top[:3]}")
    return results


def evaluate_specificity(
    targets: set[tuple[str, str, str]],
    graph: nx.DiGraph,
    normal: Window,
    cfg_metrics: str,
    verbose: bool,
) -> dict[str, float]:
    n = len(normal.timestamps)
    splits = list(range(n // 2, n - 3, max(1, int(n * 0.1))))
    out: dict[str, list[bool]] = {}
    for node, metric, stat in sorted(targets):
        cfg = RankConfig(metrics=_select(cfg_metrics, metric, stat), **OVERRIDES)
        for s in splits:
            ranked = rank_root_causes(
                graph,
                node,
                f"{metric}:{stat}",
                normal.slice(0, s).metrics,
                normal.slice(s).metrics,
                cfg,
            )
            out.setdefault(metric, []).append(not ranked)
            if verbose and ranked:
                print(f"  specificity {metric} split {s}: returned {[c.node for c in ranked[:3]]}")
    return {m: float(np.mean(v)) for m, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path, help="a regime directory, e.g. .../petshop/low_traffic")
    ap.add_argument(
        "--metrics",
        choices=["target", "kind", "all"],
        default="target",
        help="series the ranker sees on every node: the target metric+statistic (the "
        "authors' setting), every statistic of the target metric, or everything",
    )
    ap.add_argument("--fold", choices=sorted(FOLDS), help="score only this half of the issues")
    ap.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="RankConfig override"
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in RankConfig.__dataclass_fields__ or not value:
            sys.exit(f"--set {item!r}: expected NAME=VALUE with a RankConfig field name")
        try:
            OVERRIDES[name] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            sys.exit(f"--set {item!r}: {value!r} is not a number")
    root: Path = args.dir
    if not (root / "graph.csv").exists():
        sys.exit(f"{root}: no graph.csv (expected a regime directory such as low_traffic)")
    graph = load_graph(root / "graph.csv")
    normal = load_metrics(root / "noissue" / "metrics.csv") if (root / "noissue").exists() else None
    if normal is None:
        sys.exit(f"{root}: no noissue/metrics.csv, nothing to use as the normal baseline")

    targets: set[tuple[str, str, str]] = set()
    rows: list[tuple[str, str, int, float, float]] = []
    for split in ("test", "train"):
        if not (root / split).is_dir():
            continue
        for issue in (root / split).iterdir():
            if (issue / "target.json").exists():
                t = json.loads((issue / "target.json").read_text())["target"]
                targets.add((t["node"], t["metric"], t.get("agg", "Average")))
        res = evaluate_issues(root, split, graph, normal, args.metrics, args.verbose, args.fold)
        for metric, hits in sorted(res.items()):
            top1 = float(np.mean([h[0] for h in hits]))
            top3 = float(np.mean([h[1] for h in hits]))
            rows.append((split, metric, len(hits), top1, top3))
    spec = (
        evaluate_specificity(targets, graph, normal, args.metrics, args.verbose)
        if (root / "noissue").is_dir()
        else {}
    )

    published = PUBLISHED.get(root.name, {})
    fold = f", fold {args.fold}" if args.fold else ""
    print(f"PetShop {root.name}, ranker series: {args.metrics}{fold}")
    if not published:
        print(f"(no published baseline recorded for regime {root.name!r})")
    print(
        f"{'split':<6} {'metric':<13} {'n':>3} {'top-1':>6} {'top-3':>6} {'spec':>6}"
        f"   {'published top-1/top-3/spec':>26}"
    )
    for split, metric, n, top1, top3 in rows:
        sp = spec.get(metric)
        sp_s = f"{sp:6.3f}" if sp is not None else f"{'-':>6}"
        pub = published.get(metric)
        pub_s = f"{pub[0]:.3f} / {pub[1]:.3f} / {pub[2]:.3f}" if pub else "-"
        print(f"{split:<6} {metric:<13} {n:3d} {top1:6.3f} {top3:6.3f} {sp_s}   {pub_s:>26}")


if __name__ == "__main__":
    main()
