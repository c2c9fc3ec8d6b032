"""The local forge and the code editor against real git: a repo, its bare origin, worktrees."""

from __future__ import annotations

import difflib
import json
import subprocess
from pathlib import Path

import pytest

from rootloop.actions.types import FileEdit
from rootloop.code.editor import EditError, RunWorkspace
from rootloop.errors import ActionRefused
from rootloop.forge.base import BODY_LIMIT, CiRun, Forge
from rootloop.forge.local import LocalForge
from rootloop.platforms.local.git import Git, GitError, seed_repository

APP = """def price(qty, unit):
    return qty * unit * 0.9  # discount


def total(items):
    return sum(price(q, u) for q, u in items)
"""


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A working clone whose ``origin`` is a bare repository, default branch ``main``."""
    test = "from app import total\n\n\ndef test_total():\n    assert total([(2, 10)]) == 20\n"
    git = seed_repository(
        tmp_path / "work", tmp_path / "origin.git", {"app.py": APP, "test_app.py": test}
    )
    return git.repo


def test_seed_repository_only_creates_new_repositories(repo: Path, tmp_path: Path):
    assert sh(repo, "git", "rev-parse", "--abbrev-ref", "@{upstream}").strip() == "origin/main"
    with pytest.raises(GitError, match="already exists"):
        seed_repository(repo, tmp_path / "other.git", {"x": "y"})


@pytest.fixture
def workspace(repo: Path, tmp_path: Path) -> RunWorkspace:
    ws = RunWorkspace(
        repo,
        service="checkout",
        run_id="20261127-101500-ab12",
        base_ref="main",
        root=tmp_path / "worktrees",
    )
    ws.open()
    return ws


FIX = FileEdit(path="app.py", search="qty * unit * 0.9  # discount", replace="qty * unit")


async def test_branch_commit_push_and_pr(repo: Path, workspace: RunWorkspace, tmp_path: Path):
    origin = tmp_path / "origin.git"
    main_before = sh(origin, "git", "rev-parse", "main").strip()
    assert workspace.branch == "rootloop/checkout/20261127-101500-ab12"

    changed = workspace.apply_edits([FIX])
    assert changed == ["app.py"]
    tests = workspace.run_tests("python -m pytest -q -p no:cacheprovider test_app.py")
    assert tests.passed, tests.output_tail
    # what a test run leaves where the repository ignores nothing (bytecode, a report):
    # written here, not left to the environment's PYTHONDONTWRITEBYTECODE
    (workspace.path / "__pycache__").mkdir(exist_ok=True)
    (workspace.path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\x00leftover")
    (workspace.path / "report.xml").write_text("<testsuite/>")
    result = workspace.commit(
        "Remove the hard-coded 10% discount from price()",
        "total() undercharged every order by 10%.",
        paths=changed,
        iteration=1,
    )

    assert "-    return qty * unit * 0.9  # discount" in result.diff
    assert result.files == ["app.py"]  # the fix, and none of the tests' leftovers
    status = sh(workspace.path, "git", "status", "--porcelain", "--untracked-files=all")
    assert "report.xml" in status and "__pycache__/app.cpython-311.pyc" in status
    log = sh(workspace.path, "git", "log", "-1", "--format=%an <%ae>%n%B")
    assert log.startswith("rootloop <rootloop@localhost>\nRemove the hard-coded 10% discount")
    assert "Rootloop-Run: 20261127-101500-ab12" in log and "undercharged" in log

    forge = LocalForge(repo, tmp_path / "state")
    assert isinstance(forge, Forge)
    assert await forge.push(workspace.branch) == result.sha
    assert sh(origin, "git", "rev-parse", workspace.branch).strip() == result.sha
    assert sh(origin, "git", "rev-parse", "main").strip() == main_before  # untouched

    pr = await forge.open_or_update_pr(
        workspace.branch,
        "checkout: fix discount",
        "## Root cause\nprice() discount\n",
        ["rootloop"],
    )
    assert pr.created and pr.number == 1 and pr.base == "main" and pr.head_sha == result.sha
    md = tmp_path / "state/prs/rootloop--checkout--20261127-101500-ab12.md"
    assert md.read_text() == "## Root cause\nprice() discount\n"
    meta = json.loads(md.with_suffix(".json").read_text())
    assert meta["branch"] == workspace.branch and meta["labels"] == ["rootloop"]

    again = await forge.open_or_update_pr(
        workspace.branch, "checkout: fix discount (v2)", "x" * (BODY_LIMIT + 100), ["needs-review"]
    )
    assert not again.created and again.number == 1 and again.body_truncated
    assert again.labels == ["rootloop", "needs-review"]
    body = md.read_text()
    assert len(body) <= BODY_LIMIT and "Trimmed by rootloop" in body
    assert (await forge.get_pr(workspace.branch)).title == "checkout: fix discount (v2)"
    assert len(list((tmp_path / "state/prs").glob("*.json"))) == 1


async def test_refuses_default_branch_everywhere(repo: Path, tmp_path: Path):
    origin = tmp_path / "origin.git"
    before = sh(origin, "git", "rev-parse", "main").strip()
    (repo / "app.py").write_text(APP.replace("0.9", "0.5"))
    sh(repo, "git", "-c", "user.name=dev", "-c", "user.email=d@e", "commit", "-qam", "local")
    forge = LocalForge(repo, tmp_path / "state")
    for branch in ("main", "refs/heads/main", "master", "feature/x", "rootloop/../main"):
        with pytest.raises(ActionRefused) as err:
            await forge.push(branch)
        assert err.value.gate == "default-branch"
    with pytest.raises(ActionRefused):
        await forge.create_branch("main", "HEAD")
    with pytest.raises(ActionRefused):
        await forge.open_or_update_pr("main", "t", "b")
    with pytest.raises(ActionRefused):  # committing in the main checkout writes to main
        Git(repo).commit_paths(repo, ["app.py"], "should not happen")
    assert sh(origin, "git", "rev-parse", "main").strip() == before


def test_default_branch_is_read_from_the_remote(tmp_path: Path):
    """A repository whose default is 'trunk' names it in the refusal."""
    origin = tmp_path / "o.git"
    sh(tmp_path, "git", "init", "-q", "--bare", "--initial-branch=trunk", str(origin))
    sh(tmp_path, "git", "clone", "-q", str(origin), "w")
    git = Git(tmp_path / "w")
    sh(git.repo, "git", "checkout", "-q", "-b", "trunk")
    (git.repo / "f").write_text("x")
    sh(git.repo, "git", "add", "f")
    sh(git.repo, "git", "-c", "user.name=d", "-c", "user.email=d@e", "commit", "-qm", "i")
    sh(git.repo, "git", "push", "-q", "origin", "trunk")
    assert git.default_branch() == "trunk"
    with pytest.raises(ActionRefused, match="'trunk' is a protected branch"):
        git.push("trunk")


def test_revert_on_run_branch(repo: Path, workspace: RunWorkspace):
    workspace.apply_edits([FIX])
    fix = workspace.commit("Remove discount", "undercharged", paths=["app.py"])
    undo = workspace.revert(fix.sha)
    assert (workspace.path / "app.py").read_text() == APP
    assert "+    return qty * unit * 0.9  # discount" in undo.diff
    assert f"This reverts commit {fix.sha}" in undo.message
    assert Git(repo).current_branch(workspace.path) == workspace.branch
    assert sh(repo, "git", "rev-parse", "main").strip() != undo.sha


def test_edit_must_match_exactly_once(workspace: RunWorkspace):
    with pytest.raises(EditError, match="does not occur"):
        workspace.apply_edits([FileEdit(path="app.py", search="qty * 2", replace="x")])
    with pytest.raises(EditError, match="occurs 2 times"):
        workspace.apply_edits([FileEdit(path="app.py", search="qty", replace="n")])
    with pytest.raises(EditError, match="leaves the repository"):
        workspace.apply_edits([FileEdit(path="../escape.py", search="", replace="x")])
    # a failing second edit leaves the first unapplied: all or nothing
    with pytest.raises(EditError):
        workspace.apply_edits([FIX, FileEdit(path="app.py", search="nope", replace="x")])
    assert (workspace.path / "app.py").read_text() == APP


def test_apply_unified_diff_and_reopen(repo: Path, workspace: RunWorkspace, tmp_path: Path):
    new = APP.replace("qty * unit * 0.9  # discount", "qty * unit")
    diff = "".join(
        difflib.unified_diff(APP.splitlines(True), new.splitlines(True), "a/app.py", "b/app.py")
    )
    assert workspace.apply_diff(diff) == ["app.py"]
    first = workspace.commit("Apply diff", "because", paths=["app.py"])
    with pytest.raises(EditError, match="does not apply"):
        workspace.apply_diff(diff)
    # resuming a killed run reuses the same worktree and branch
    again = RunWorkspace(
        repo,
        service="checkout",
        run_id="20261127-101500-ab12",
        base_ref="main",
        root=tmp_path / "worktrees",
    )
    assert again.open() == first.sha
    workspace.close()
    assert not workspace.path.exists()


async def test_ci_runs_recorded_by_a_local_runner(repo: Path, tmp_path: Path):
    forge = LocalForge(repo, tmp_path / "state")
    forge.record_ci_run(
        CiRun(
            id="1",
            name="ci",
            branch="rootloop/a/1",
            head_sha="abc123",
            status="completed",
            conclusion="failure",
        )
    )
    forge.record_ci_run(
        CiRun(
            id="2",
            name="ci",
            branch="rootloop/b/2",
            head_sha="def456",
            status="completed",
            conclusion="success",
        )
    )
    assert [r.id for r in await forge.ci_runs(branch="rootloop/a/1")] == ["1"]
    runs = await forge.ci_runs(sha="def4")
    assert len(runs) == 1 and runs[0].passed
