"""The lab's CI: runs the repository's own tests on every pushed branch head.

Runs are kept as JSON in ``<lab>/ci/runs`` and served by ``github_api`` in
GitHub's REST shapes; each is also recorded for ``rootloop.forge.local``
(``<lab>/forge/ci``). A successful run of ``main`` or of a ``rootloop/*``
branch is handed to the deployer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import BaseModel

from rootloop.code.editor import asks_to_skip_ci
from rootloop.forge.base import CiRun
from rootloop.forge.local import branch_slug
from rootloop.state import atomic_write, atomic_write_json
from rootloop_lab import repo
from rootloop_lab.layout import Layout

log = logging.getLogger("rootloop_lab.ci")
WORKFLOW = "CI"
WORKFLOW_PATH = ".github/workflows/ci.yml"
JOB = "test"
STEPS = ("Set up job", "Check out code", "Run tests", "Complete job")
TEST_TIMEOUT = 180


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StepRecord(BaseModel):
    name: str
    number: int
    status: str = "queued"
    conclusion: str | None = None
    started_at: str | None = None
    completed_at: str | None = None


class RunRecord(BaseModel):
    """One workflow run with its single job, as the lab keeps it."""

    id: int
    run_number: int
    head_branch: str
    head_sha: str
    message: str = ""
    status: str = "queued"
    conclusion: str | None = None
    created_at: str
    updated_at: str
    started_at: str | None = None
    completed_at: str | None = None
    steps: list[StepRecord] = []
    output: str = ""  # the test step's output

    @property
    def job_id(self) -> int:
        return self.id * 10 + 1


class CiStore:
    def __init__(self, layout: Layout) -> None:
        self.dir = layout.ci / "runs"
        self.forge_ci = layout.root / "forge" / "ci"
        self.lock = threading.Lock()

    def all(self) -> list[RunRecord]:
        runs = []
        for f in self.dir.glob("*.json") if self.dir.exists() else []:
            with contextlib.suppress(OSError, ValueError):
                runs.append(RunRecord.model_validate_json(f.read_text()))
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def get(self, run_id: int) -> RunRecord | None:
        f = self.dir / f"{run_id}.json"
        try:
            return RunRecord.model_validate_json(f.read_text())
        except (OSError, ValueError):
            return None

    def next_id(self) -> int:
        with self.lock:
            ids = [r.id for r in self.all()]
            return max(ids, default=1000) + 1

    def save(self, run: RunRecord, html_url: str) -> None:
        atomic_write(self.dir / f"{run.id}.json", run.model_dump_json(indent=1))
        ci = CiRun(
            id=str(run.id),
            name=WORKFLOW,
            branch=run.head_branch,
            head_sha=run.head_sha,
            status=run.status,
            conclusion=run.conclusion,
            url=html_url,
            created_at=datetime.fromisoformat(run.created_at.replace("Z", "+00:00")),
        )
        atomic_write_json(self.forge_ci / f"{branch_slug(ci.id)}.json", ci.model_dump(mode="json"))


class CiRunner:
    """Polls origin's branch heads; runs the tests of each new head, one at a time."""

    def __init__(
        self,
        layout: Layout,
        store: CiStore,
        html_base: str,
        on_success: Callable[[RunRecord], None],
    ) -> None:
        self.layout = layout
        self.store = store
        self.html_base = html_base
        self.on_success = on_success
        self.seen: dict[str, str] = {}
        self.stop_event = threading.Event()

    def run(self) -> None:
        for r in self.store.all():  # a restarted lab does not re-run what it ran
            self.seen.setdefault(r.head_branch, r.head_sha)
        while not self.stop_event.wait(0.5):
            try:
                heads = repo.branch_heads(self.layout)
            except Exception as exc:
                log.error("cannot read branch heads: %s", exc)
                continue
            for branch, sha in sorted(heads.items(), key=lambda kv: kv[0] != "main"):
                if self.seen.get(branch) != sha:
                    self.seen[branch] = sha
                    if self.skipped(sha):
                        log.info("CI skipped on %s@%s: its message asks so", branch, sha[:7])
                        continue
                    self.execute(branch, sha)

    def skipped(self, sha: str) -> bool:
        """The pushed head's message asks for no run, as GitHub Actions reads it."""
        try:
            message = repo.git("log", "-1", "--format=%B", sha, cwd=self.layout.origin)
        except Exception:  # unreadable: run it (a run too many is safe; a deploy skipped is not)
            return False
        return asks_to_skip_ci(message)

    def execute(self, branch: str, sha: str) -> RunRecord:
        rid = self.store.next_id()
        msg = ""
        with contextlib.suppress(Exception):
            msg = repo.git("log", "-1", "--format=%s", sha, cwd=self.layout.origin)
        t = now_iso()
        run = RunRecord(
            id=rid,
            run_number=rid - 1000,
            head_branch=branch,
            head_sha=sha,
            message=msg,
            created_at=t,
            updated_at=t,
            steps=[StepRecord(name=n, number=i + 1) for i, n in enumerate(STEPS)],
        )
        url = f"{self.html_base}/actions/runs/{rid}"
        self.store.save(run, url)
        run.status, run.started_at = "in_progress", now_iso()
        ok, output = self._test(run)
        t = now_iso()
        run.output = output
        run.status, run.conclusion = "completed", "success" if ok else "failure"
        run.completed_at = run.updated_at = t
        for st in run.steps:
            failed_here = not ok and st.name == "Run tests"
            skipped = not ok and st.number > 3
            st.status = "completed"
            st.conclusion = "failure" if failed_here else ("skipped" if skipped else "success")
            st.started_at, st.completed_at = run.started_at, t
        self.store.save(run, url)
        log.info("CI run %d on %s@%s: %s", rid, branch, sha[:7], run.conclusion)
        if ok:
            try:
                self.on_success(run)
            except Exception:
                log.exception("deploying %s failed", sha[:7])
        return run

    def _test(self, run: RunRecord) -> tuple[bool, str]:
        work = self.layout.ci / "work" / str(run.id)
        try:
            src = repo.export(self.layout, run.head_sha)
            shutil.copytree(src, work)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONDONTWRITEBYTECODE": "1",
                "HOME": os.environ.get("HOME", "/tmp"),
            }
            cmd = [sys.executable, *repo.TEST_COMMAND.split()[1:]]
            start = time.monotonic()
            res = subprocess.run(
                cmd,
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=TEST_TIMEOUT,
                check=False,
            )
            took = time.monotonic() - start
            out = (
                f"$ {repo.TEST_COMMAND}\n{res.stdout}{res.stderr}"
                f"Process completed with exit code {res.returncode} in {took:.1f}s.\n"
            )
            return res.returncode == 0, out
        except subprocess.TimeoutExpired:
            return False, f"$ {repo.TEST_COMMAND}\nThe tests timed out after {TEST_TIMEOUT}s.\n"
        except Exception as exc:
            return False, f"the run could not start: {exc}\n"
        finally:
            shutil.rmtree(work, ignore_errors=True)
