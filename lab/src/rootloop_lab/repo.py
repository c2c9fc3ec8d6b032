"""The payments-api repository the lab creates: a bare ``origin`` and a working clone.

The working clone is the lab's own (a "developer" of the team): scenarios push
commits to ``main`` from it. rootloop works in its own clone of ``origin``.
Deploys are plain ``git archive`` exports of one commit.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from rootloop.errors import PlatformError
from rootloop_lab.layout import Layout

TEMPLATE = Path(__file__).parent / "service_template"
AUTHOR = {
    "GIT_AUTHOR_NAME": "lab developer",
    "GIT_AUTHOR_EMAIL": "dev@lab.local",
    "GIT_COMMITTER_NAME": "lab developer",
    "GIT_COMMITTER_EMAIL": "dev@lab.local",
}
TEST_COMMAND = "python -m pytest -q -p no:cacheprovider tests"


def git(*args: str, cwd: Path, timeout: float = 60) -> str:
    env = {**os.environ, **AUTHOR, "GIT_TERMINAL_PROMPT": "0"}
    res = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if res.returncode != 0:
        raise PlatformError(
            f"git {' '.join(args)} failed in {cwd}: {(res.stderr or res.stdout).strip()[-400:]}"
        )
    return res.stdout.strip()


def create(layout: Layout) -> str:
    """Create origin and the working clone (once); the sha of ``main``."""
    if layout.origin.exists() and layout.work.exists():
        return git("rev-parse", "main", cwd=layout.origin)
    shutil.rmtree(layout.origin, ignore_errors=True)
    shutil.rmtree(layout.work, ignore_errors=True)
    layout.origin.mkdir(parents=True)
    git("init", "--bare", "-q", "-b", "main", cwd=layout.origin)
    shutil.copytree(TEMPLATE, layout.work, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (layout.work / ".gitignore").write_text("__pycache__/\n*.pyc\n.pytest_cache/\n")
    git("init", "-q", "-b", "main", cwd=layout.work)
    git("remote", "add", "origin", str(layout.origin), cwd=layout.work)
    git("add", "-A", cwd=layout.work)
    git("commit", "-q", "-m", "payments-api: initial version", cwd=layout.work)
    git("push", "-q", "origin", "main", cwd=layout.work)
    return git("rev-parse", "HEAD", cwd=layout.work)


def commit_and_push(layout: Layout, edits: list[tuple[str, str, str]], message: str) -> str:
    """Apply search/replace edits in the working clone, commit to main, push; the new sha."""
    work = layout.work
    git("fetch", "-q", "origin", cwd=work)
    git("reset", "-q", "--hard", "origin/main", cwd=work)
    for path, search, replace in edits:
        file = work / path
        text = file.read_text()
        if search not in text:
            raise PlatformError(f"{path} does not contain {search!r}")
        file.write_text(text.replace(search, replace, 1))
    git("commit", "-q", "-am", message, cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def export(layout: Layout, sha: str) -> Path:
    """The files of ``sha`` under deploy/<sha> (exported once)."""
    target = layout.deploys / sha
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    data = subprocess.run(
        ["git", "archive", "--format=tar", sha],
        cwd=layout.origin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if data.returncode != 0:
        raise PlatformError(f"git archive {sha} failed: {data.stderr.decode()[-300:]}")
    with tarfile.open(fileobj=io.BytesIO(data.stdout)) as tar:
        tar.extractall(target, filter="data")
    (target / ".complete").write_text(sha + "\n")
    return target


def branch_heads(layout: Layout) -> dict[str, str]:
    out = git(
        "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads", cwd=layout.origin
    )
    heads = {}
    for line in out.splitlines():
        name, _, sha = line.partition(" ")
        heads[name] = sha
    return heads
