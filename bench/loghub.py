"""Grouping accuracy of rootloop's log template digest on Loghub-2k, raw and clean.

Usage: .venv/bin/python bench/loghub.py ../shared/data/loghub-2k [--show-errors N] [--systems A,B]

For every ``X/X_2k.log`` with its ``X/X_2k.log_structured.csv`` under DIR, three groupings
are scored with Loghub's grouping accuracy (GA: the share of lines whose predicted group
holds exactly the lines of their ground-truth group):

- ``raw``: each raw line, header included, through ``TemplateDigester.add_many`` — the same
  code and configuration the cloudwatch-logs skill uses (the header is learnt per system);
- ``clean``: the dataset's clean message field (``Content``) through the same digester;
- ``drain3``: drain3's ``TemplateMiner`` with its default settings fed ``Content``.

``lines/s`` is the raw path's rate on the system's lines repeated to ``--rate-lines`` lines
through one fresh digester (header learning included), single-threaded: by the wall clock and
by process CPU time (what one core does when the machine is shared). Data:
Loghub (logpai), see the dataset's LICENSE.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

from rootloop.analysis.templates import TemplateDigester

DRAIN_GA = {  # Drain's published GA (Loghub benchmark, tuned per system); "-" elsewhere
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


def load_system(log: Path, structured: Path) -> tuple[list[str], list[str], list[str]]:
    """Raw lines, clean messages and ground-truth event ids, line for line."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    with structured.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if len(lines) != len(rows):
        raise SystemExit(f"{log}: {len(lines)} lines but {len(rows)} labels")
    return lines, [r["Content"] for r in rows], [r["EventId"] for r in rows]


def drain3_default(messages: list[str]) -> list[int]:
    """drain3 as shipped: default configuration, no masking, fed the clean message."""
    miner = TemplateMiner(persistence_handler=None, config=TemplateMinerConfig())
    return [int(miner.add_log_message(m)["cluster_id"]) for m in messages]


def lines_per_second(lines: list[str], n: int) -> tuple[float, float]:
    """The raw path's rate on ``lines`` repeated to ``n`` lines, header learning included:
    by the wall clock and by this process's CPU time (the one-core figure on a shared box)."""
    batch = [lines[i % len(lines)] for i in range(n)]
    d = TemplateDigester()
    wall, cpu = time.perf_counter(), time.process_time()
    d.add_many(batch)
    d.digest(30)
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


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
    ap.add_argument("--show-headers", action="store_true", help="print each learnt header")
    ap.add_argument("--systems", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--rate-lines", type=int, default=20_000, metavar="N", help="0 = skip")
    args = ap.parse_args()
    wanted = {s for s in args.systems.split(",") if s}
    pairs = sorted(
        (p, p.with_name(p.name + "_structured.csv"))
        for p in args.dir.glob("*/*_2k.log")
        if p.with_name(p.name + "_structured.csv").exists()
        and (not wanted or p.parent.name in wanted)
    )
    if not pairs:
        sys.exit(f"no X/X_2k.log + X_2k.log_structured.csv pairs under {args.dir}")
    print(
        f"{'system':<11} {'GA raw':>7} {'GA clean':>8} {'drain3':>7} {'Drain pub':>9} "
        f"{'templates':>9} {'lines/s':>9} {'cpu l/s':>9}"
    )
    cols: dict[str, list[float]] = defaultdict(list)
    for log, structured in pairs:
        name = log.parent.name
        lines, content, truth = load_system(log, structured)
        d = TemplateDigester()
        pred = d.add_many(lines)
        ga_raw = grouping_accuracy(truth, pred)
        if args.show_headers:
            print(f"  header: {d.header.describe() if d.header else '-'}")
        if args.show_errors:
            _show_errors(lines, truth, pred, d, args.show_errors)
        ga_clean = grouping_accuracy(truth, TemplateDigester().add_many(content))
        ga_drain = grouping_accuracy(truth, drain3_default(content))
        nan = float("nan")
        rate, cpu = lines_per_second(lines, args.rate_lines) if args.rate_lines else (nan, nan)
        ref = DRAIN_GA.get(name)
        for key, v in (("raw", ga_raw), ("clean", ga_clean), ("drain3", ga_drain)):
            cols[key].append(v)
        cols["rate"].append(rate)
        cols["cpu"].append(cpu)
        if ref is not None:
            cols["pub"].append(ref)
        ref_s = f"{ref:9.4f}" if ref is not None else f"{'-':>9}"
        print(
            f"{name:<11} {ga_raw:7.4f} {ga_clean:8.4f} {ga_drain:7.4f} {ref_s} "
            f"{d.digest(0).distinct:9d} {rate:9,.0f} {cpu:9,.0f}"
        )
    mean = {k: sum(v) / len(v) for k, v in cols.items() if v}
    pub_s = f"{mean['pub']:9.4f}" if "pub" in mean else f"{'-':>9}"
    print(
        f"{'mean':<11} {mean['raw']:7.4f} {mean['clean']:8.4f} {mean['drain3']:7.4f} {pub_s} "
        f"{'':9} {mean['rate']:9,.0f} {mean['cpu']:9,.0f}"
    )


if __name__ == "__main__":
    main()
