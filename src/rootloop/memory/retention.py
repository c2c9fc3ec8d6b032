"""Retention: old transcripts go first; summaries and debug contexts are kept.

Only files inside the memory directory are ever candidates. Symbolic links are
never followed, never counted by their target's size and never deleted through;
a path that resolves outside the directory is skipped and reported.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import BaseModel

TRANSCRIPT = "transcript.jsonl"


class PruneItem(BaseModel):
    run_id: str
    path: Path
    bytes: int
    reason: str


class PruneReport(BaseModel):
    dry_run: bool
    items: list[PruneItem] = []
    skipped: list[str] = []
    total_before: int = 0
    total_after: int = 0
    limit_bytes: int | None = None

    @property
    def freed(self) -> int:
        return sum(i.bytes for i in self.items)

    @property
    def over_limit(self) -> bool:
        """Still above the size limit with only summaries and contexts left."""
        return self.limit_bytes is not None and self.total_after > self.limit_bytes


def dir_size(root: Path) -> int:
    """Bytes under ``root``, without following links (a link counts as its own size)."""
    total = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def safely_inside(root: Path, path: Path) -> bool:
    """True if ``path`` is a regular file reached from ``root`` through no symbolic link."""
    root = root.resolve()
    try:
        rel = path.relative_to(root) if path.is_absolute() else path
    except ValueError:
        return False
    cur = root
    for part in rel.parts:
        cur = cur / part
        if cur.is_symlink():
            return False
    return cur.is_file() and cur.resolve().is_relative_to(root)


def plan(
    root: Path, max_total_bytes: int | None, max_age_s: float | None, now: float | None = None
) -> PruneReport:
    """What a prune would remove, oldest transcript first. Touches nothing."""
    root = root.resolve()
    now = time.time() if now is None else now
    report = PruneReport(dry_run=True, limit_bytes=max_total_bytes)
    report.total_before = dir_size(root) if root.exists() else 0
    candidates: list[tuple[float, str, Path, int]] = []
    runs = root / "runs"
    if runs.is_dir() and not runs.is_symlink():
        for run_dir in sorted(runs.iterdir()):
            path = run_dir / TRANSCRIPT
            if not (path.exists() or path.is_symlink()):
                continue
            if not safely_inside(root, path):
                report.skipped.append(f"{path}: a link or outside the memory directory")
                continue
            st = path.stat()
            candidates.append((st.st_mtime, run_dir.name, path, st.st_size))
    candidates.sort()
    total = report.total_before
    for mtime, run_id, path, size in candidates:
        reason = None
        if max_age_s is not None and now - mtime > max_age_s:
            reason = f"older than {max_age_s / 86400:g} days"
        elif max_total_bytes is not None and total > max_total_bytes:
            reason = f"memory over {max_total_bytes / 1e6:g} MB"
        if reason:
            report.items.append(PruneItem(run_id=run_id, path=path, bytes=size, reason=reason))
            total -= size
    report.total_after = total
    return report


def apply(root: Path, report: PruneReport) -> PruneReport:
    """Remove the planned transcripts, re-checking each path right before it goes."""
    done = report.model_copy(update={"dry_run": False, "items": []})
    for item in report.items:
        if not safely_inside(root, item.path):
            done.skipped.append(f"{item.path}: changed since planning; left alone")
            continue
        item.path.unlink()
        done.items.append(item)
    done.total_after = dir_size(root.resolve())
    return done
