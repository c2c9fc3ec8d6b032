"""Grouping accuracy of rootloop's log template digest on Loghub-2k.

Usage: .venv/bin/python bench/loghub.py ../shared/data/loghub-2k [--show-errors N]

For every ``X/X_2k.log`` with its ``X/X_2k.log_structured.csv`` under DIR, each raw line
(header included) goes through ``TemplateDigester.add`` — the same code and the same
configuration the cloudwatch-logs skill uses — and the grouping accuracy (GA: the share of
lines whose predicted group holds exactly the lines of their ground-truth group) is printed
beside Drain's published figure. Data: Loghub (logpai), see the dataset's LICENSE.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

from rootloop.analysis.templates import TemplateDigester, strip_header

DRAIN_GA = {
    "HDFS": 0.9975,
    "Hadoop": 0.9475,
    "Spark": 0.92,
    "Zookeeper": 0.9665,
    "OpenStack": 0.7325,
    "Apache": 1.0,
    "HealthApp": 0.78,
    "OpenSSH": 0.7875,
}


def grouping_accuracy(truth: list[str], pred: list[int]) -> float:
    """Fraction of lines whose predicted group equals their ground-truth group exactly."""
    t_groups: dict[str, set[int]] = defaultdict(set)
    p_groups: dict[int, set[int]] = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, pred, strict=True)):
        t_groups[t].add(i)
        p_groups[p].add(i)
    ok = sum(len(g) for t, g in t_groups.items() if p_groups[pred[min(g)]] == g)
    return ok / len(truth)


def run_system(log: Path, structured: Path, show_errors: int) -> tuple[float, float, int]:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    with structured.open(newline="", encoding="utf-8") as f:
        truth = [row["EventId"] for row in csv.DictReader(f)]
    if len(lines) != len(truth):
        raise SystemExit(f"{log}: {len(lines)} lines but {len(truth)} labels")
    d = TemplateDigester()
    t0 = time.perf_counter()
    pred = [d.add(line) for line in lines]
    dt = time.perf_counter() - t0
    ga = grouping_accuracy(truth, pred)
    if show_errors:
        _show_errors(lines, truth, pred, d, show_errors)
    return ga, len(lines) / dt, d.digest(0).distinct


def _show_errors(
    lines: list[str], truth: list[str], pred: list[int], d: TemplateDigester, n: int
) -> None:
    """Print ground-truth groups that were split or merged (design aid)."""
    t_groups: dict[str, list[int]] = defaultdict(list)
    p_groups: dict[int, set[int]] = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, pred, strict=True)):
        t_groups[t].append(i)
        p_groups[p].add(i)
    shown = 0
    for t, idx in sorted(t_groups.items(), key=lambda kv: -len(kv[1])):
        if p_groups[pred[idx[0]]] == set(idx):
            continue
        preds = sorted({pred[i] for i in idx})
        print(f"  {t} ({len(idx)} lines) -> clusters {preds}")
        for p in preds[:3]:
            i = next(i for i in idx if pred[i] == p)
            others = {truth[j] for j in p_groups[p]} - {t}
            print(f"    [{p}] {d.message(lines[i])[:140]}  merged with {sorted(others)[:4]}")
        shown += 1
        if shown >= n:
            break


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--show-errors", type=int, default=0, metavar="N")
    ap.add_argument("--show-headers", action="store_true", help="print a stripped line each")
    ap.add_argument("--throughput", type=int, default=100_000, metavar="LINES", help="0 = skip")
    args = ap.parse_args()
    pairs = sorted(
        (p, p.with_name(p.name + "_structured.csv"))
        for p in args.dir.glob("*/*_2k.log")
        if p.with_name(p.name + "_structured.csv").exists()
    )
    if not pairs:
        sys.exit(f"no X/X_2k.log + X_2k.log_structured.csv pairs under {args.dir}")
    print(f"{'system':<11} {'GA':>7} {'Drain':>7} {'templates':>9} {'lines/s':>9}")
    ours, theirs = [], []
    for log, structured in pairs:
        name = log.parent.name
        if args.show_headers:
            print("  " + strip_header(log.read_text(errors="replace").splitlines()[0])[:120])
        ga, rate, n = run_system(log, structured, args.show_errors)
        ref = DRAIN_GA.get(name)
        ours.append(ga)
        if ref is not None:
            theirs.append(ref)
        ref_s = f"{ref:7.4f}" if ref is not None else f"{'-':>7}"
        print(f"{name:<11} {ga:7.4f} {ref_s} {n:9d} {rate:9.0f}")
    mean_ref = f"{sum(theirs) / len(theirs):7.4f}" if theirs else f"{'-':>7}"
    print(f"{'mean':<11} {sum(ours) / len(ours):7.4f} {mean_ref}")
    if args.throughput:
        _throughput([log for log, _ in pairs], args.throughput)


def _throughput(logs: list[Path], n: int) -> None:
    """All systems' lines interleaved and repeated to ``n`` lines, through one digester."""
    pool = [line for log in logs for line in log.read_text(errors="replace").splitlines()]
    lines = [pool[i % len(pool)] for i in range(n)]
    d = TemplateDigester()
    t0 = time.perf_counter()
    for line in lines:
        d.add(line)
    digest = d.digest(30)
    dt = time.perf_counter() - t0
    print(
        f"throughput: {n} mixed lines in {dt:.2f} s = {n / dt:,.0f} lines/s, "
        f"{digest.distinct} templates"
    )


if __name__ == "__main__":
    main()
