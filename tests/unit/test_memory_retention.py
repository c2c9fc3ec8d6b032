"""Retention: limits enforced, oldest transcripts first, summaries kept, nothing outside."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.unit.test_memory_helpers import later, oom_run

from rootloop.events import Event
from rootloop.memory import Memory, MemoryConfig

DAY = 86400.0


def archived_run(mem: Memory, run_id: str, minute: int, age_days: float, kb: int) -> Path:
    ctx, f, _ = oom_run(run_id, started=later(minute))
    rec = mem.recorder(run_id, ctx.service)
    for i in range(kb):
        rec(Event(kind="progress", run_id=run_id, message=f"{i:04d} " + "x" * 1000))
    rec.close()
    mem.archive(ctx, f)
    path = mem.root / "runs" / run_id / "transcript.jsonl"
    stamp = time.time() - age_days * DAY
    os.utime(path, (stamp, stamp))
    return path


def kept_files(mem: Memory, run_id: str) -> set[str]:
    return {p.name for p in (mem.root / "runs" / run_id).iterdir()}


def test_age_limit_dry_run_then_prune(tmp_path: Path) -> None:
    mem = Memory(
        tmp_path / "memory",
        MemoryConfig(embeddings="off", max_total_mb=None, max_transcript_age_days=30),
    )
    old = archived_run(mem, "r-old", 0, age_days=45, kb=5)
    new = archived_run(mem, "r-new", 10, age_days=2, kb=5)
    plan = mem.prune(dry_run=True)
    assert [i.run_id for i in plan.items] == ["r-old"] and plan.dry_run
    assert "older than 30 days" in plan.items[0].reason
    assert old.exists()  # a dry run touches nothing
    done = mem.prune()
    assert not old.exists() and new.exists()
    assert done.freed == plan.freed > 5000
    assert kept_files(mem, "r-old") == {
        "context.json",
        "findings.json",
        "summary-short.md",
        "summary.md",
    }
    assert mem.index.get("r-old").has_transcript is False
    assert mem.show("r-old").transcript is None
    assert mem.prior("checkout").last_run_id == "r-new"
    mem.close()


def test_size_limit_removes_oldest_transcripts_first(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "memory", MemoryConfig(embeddings="off", max_transcript_age_days=None))
    paths = [archived_run(mem, f"r-{i}", i, age_days=10 - i, kb=60) for i in range(5)]
    total = mem.prune(dry_run=True).total_before
    # room for everything but about two transcripts
    mem.config.max_total_mb = (total - 2 * 60_000) / 1e6
    done = mem.prune()
    assert [i.run_id for i in done.items] == ["r-0", "r-1"]
    assert [p.exists() for p in paths] == [False, False, True, True, True]
    assert done.total_after <= mem.config.max_total_mb * 1e6 and not done.over_limit
    for i in range(5):  # summaries and contexts of every run are kept
        assert {"summary.md", "summary-short.md", "context.json"} <= kept_files(mem, f"r-{i}")
    # a limit below what summaries alone need: every transcript goes, summaries stay
    mem.config.max_total_mb = 0.001
    done = mem.prune()
    assert all(not p.exists() for p in paths) and done.over_limit
    assert (mem.root / "runs" / "r-0" / "summary.md").exists()
    mem.close()


def test_nothing_outside_the_memory_directory_is_touched(tmp_path: Path) -> None:
    outside_dir = tmp_path / "elsewhere"
    outside_dir.mkdir()
    outside_file = outside_dir / "transcript.jsonl"
    outside_file.write_text("precious\n" * 500_000)  # 4.5 MB
    beside = tmp_path / "transcript.jsonl"  # a file beside the memory dir
    beside.write_text("also precious\n" * 10_000)
    old = time.time() - 400 * DAY
    os.utime(outside_file, (old, old))
    os.utime(beside, (old, old))

    mem = Memory(
        tmp_path / "memory",
        MemoryConfig(embeddings="off", max_total_mb=0.001, max_transcript_age_days=1),
    )
    archived_run(mem, "r-real", 0, age_days=400, kb=3)
    link_dir = mem.root / "runs" / "r-link"
    link_dir.mkdir(parents=True)
    (link_dir / "transcript.jsonl").symlink_to(outside_file)  # a link to a file outside
    (mem.root / "runs" / "r-dirlink").symlink_to(outside_dir, target_is_directory=True)

    plan = mem.prune(dry_run=True)
    assert [i.run_id for i in plan.items] == ["r-real"]
    assert len(plan.skipped) == 2
    done = mem.prune()
    assert [i.run_id for i in done.items] == ["r-real"]
    assert outside_file.read_text().startswith("precious")
    assert beside.exists() and outside_dir.is_dir()
    assert (link_dir / "transcript.jsonl").is_symlink()  # not followed, not removed
    assert (mem.root / "runs" / "r-dirlink").is_symlink()
    # links count as their own size, not their target's (4.5 MB outside)
    assert done.total_before < 1_000_000
    mem.close()
