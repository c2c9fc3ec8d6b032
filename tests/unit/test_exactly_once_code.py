"""Code fixes and reverts are exactly once across a kill: found by trailer on the REMOTE
run branch (real git, a bare remote on disk); a killed push is pushed on resume."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.fakes import Killed, kill_points

import rootloop
from rootloop.actions.dispatch import Dispatcher
from rootloop.actions.types import ApplyPatch, BaseAction, FileEdit, RevertCommit
from rootloop.context import ContextStore, DebugContext, HistoryEntry
from rootloop.platforms.local.git import seed_repository

FIX = ApplyPatch(
    target="svc",
    title="Use the bigger pool",
    edits=(FileEdit(path="app.py", search="POOL = 5", replace="POOL = 20"),),
)


class Run:
    """A run's iterations on a real repository, persisted at each checkpoint like the loop."""

    def __init__(self, tmp_path: Path) -> None:
        self.work, self.origin = tmp_path / "work", tmp_path / "origin.git"
        seed_repository(self.work, self.origin, {"app.py": "POOL = 5\n"})
        map_path = tmp_path / "rootloop.yaml"
        map_path.write_text(
            f"service: svc\nenvironment: staging\nself:\n  repo: {{path: {self.work}}}\n"
        )
        self.topology = rootloop.load_map(map_path, env={})
        self.state = tmp_path / "state"
        self.store = ContextStore(self.state)
        self.ctx = DebugContext(service="svc")
        self.progress: list[str] = []
        self.kill_on_progress: str | None = None

    def begin(self, action: BaseAction) -> None:
        self.ctx.iteration += 1
        self.ctx.history.append(
            HistoryEntry(
                iteration=self.ctx.iteration,
                diagnosis="d",
                action_detail=action,  # type: ignore[arg-type]
                phase="applying",
            )
        )
        self.store.save(self.ctx)

    def on_progress(self, message: str) -> None:
        self.store.save(self.ctx)
        self.progress.append(message)
        if self.kill_on_progress and message.startswith(self.kill_on_progress):
            self.kill_on_progress = None
            raise Killed(message)

    def apply(self, action: BaseAction):
        d = Dispatcher(self.topology, self.state)
        return asyncio.run(d.apply(action, self.ctx, self.ctx.history[-1], self.on_progress))

    def applied(self, action: BaseAction) -> bool:
        d = Dispatcher(self.topology, self.state)
        return asyncio.run(d.already_applied(action, self.ctx, self.ctx.history[-1]))

    def resumed(self) -> Run:
        self.ctx = self.store.load(self.ctx.run_id)
        return self

    def remote_log(self) -> list[str]:
        """Subjects on the remote run branch (newest first)."""
        branch = f"rootloop/svc/{self.ctx.run_id}"
        out = subprocess.run(
            ["git", "-C", str(self.origin), "log", "--format=%s", branch],
            capture_output=True,
            text=True,
        )
        return out.stdout.splitlines() if out.returncode == 0 else []


@pytest.mark.parametrize("point", ["commit", "push"])
def test_fix_killed_before_commit_or_push_lands_once(tmp_path: Path, monkeypatch, point) -> None:
    run = Run(tmp_path)
    run.begin(FIX)
    kill_points(monkeypatch, f"step:apply-patch:{point}")
    with pytest.raises(Killed):
        run.apply(FIX)
    assert run.remote_log() == []  # nothing reached the remote
    run.resumed()
    assert not run.applied(FIX)
    result = run.apply(FIX)
    assert result.ok, result.details
    assert run.remote_log() == ["Use the bigger pool", "Initial commit"]  # one commit, pushed
    assert run.applied(FIX)


def test_fix_killed_after_the_push_is_not_committed_again(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.begin(FIX)
    run.kill_on_progress = "pushed"
    with pytest.raises(Killed):
        run.apply(FIX)
    assert run.remote_log() == ["Use the bigger pool", "Initial commit"]
    result = run.resumed().apply(FIX)
    assert result.ok and result.commit
    assert run.remote_log() == ["Use the bigger pool", "Initial commit"]
    assert any("found this iteration's commit" in m and "on the remote" in m for m in run.progress)
    assert "POOL = 20" in result.details["diff"]  # the found commit is described, not empty


def test_revert_killed_after_its_push_is_found_not_reverted_twice(tmp_path: Path) -> None:
    """The issue's case: resume re-applied the revert, git failed, the fix was 'failed'."""
    run = Run(tmp_path)
    run.begin(FIX)
    fix = run.apply(FIX)
    full = subprocess.run(
        ["git", "-C", str(run.origin), "rev-parse", f"rootloop/svc/{run.ctx.run_id}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert full.startswith(fix.commit or "-")
    undo = RevertCommit(target="svc", commit=full)
    run.begin(undo)
    run.kill_on_progress = "pushed"
    with pytest.raises(Killed):
        run.apply(undo)
    result = run.resumed().apply(undo)
    assert result.ok, result.details
    assert run.remote_log() == [
        'Revert "Use the bigger pool"',
        "Use the bigger pool",
        "Initial commit",
    ]


def test_a_lost_worktree_adopts_the_pushed_commit(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.begin(FIX)
    run.kill_on_progress = "pushed"
    with pytest.raises(Killed):
        run.apply(FIX)
    worktrees = run.state / "worktrees"
    shutil.rmtree(worktrees)
    subprocess.run(["git", "-C", str(run.work), "worktree", "prune"], check=True)
    subprocess.run(
        ["git", "-C", str(run.work), "branch", "-D", f"rootloop/svc/{run.ctx.run_id}"], check=True
    )
    result = run.resumed().apply(FIX)
    assert result.ok, result.details
    assert run.remote_log() == ["Use the bigger pool", "Initial commit"]


def test_a_dirty_worktree_from_a_killed_edit_is_cleaned_before_editing_again(
    tmp_path: Path, monkeypatch
) -> None:
    run = Run(tmp_path)
    run.begin(FIX)
    kill_points(monkeypatch, "step:apply-patch:commit")
    with pytest.raises(Killed):
        run.apply(FIX)  # the edit is written, not committed
    result = run.resumed().apply(FIX)  # the search text must be found again
    assert result.ok, result.details
