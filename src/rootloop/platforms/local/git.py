"""The only place rootloop runs ``git``: a thin, typed wrapper around the real binary.

Every command that moves a branch (create, commit, revert, push) first passes
``check_branch``: the one gate that keeps rootloop off the default branch. A
branch rootloop may write is named ``rootloop/...``; ``main``, ``master`` and the
repository's default branch are refused with ``ActionRefused(gate="default-branch")``.
There is deliberately no merge, pull, rebase or force-push here.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rootloop.errors import ActionRefused, PlatformError

BRANCH_PREFIX = "rootloop/"
ALWAYS_PROTECTED = frozenset({"main", "master", "HEAD"})
AUTHOR_NAME = "rootloop"
AUTHOR_EMAIL = "rootloop@localhost"
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_BRANCH_CHARS = re.compile(r"^[A-Za-z0-9._/-]+$")


class GitError(PlatformError):
    """A git command failed; the message carries its stderr tail."""


def check_branch(branch: str, default_branch: str | None = None) -> str:
    """Refuse any write to a branch that is not rootloop's own. Returns the branch name.

    This is the single place the never-default-branch rule lives; the git wrapper
    and both forges call it before anything that creates, moves or pushes a ref.
    """
    name = branch.removeprefix("refs/heads/")
    protected = set(ALWAYS_PROTECTED)
    if default_branch:
        protected.add(default_branch.removeprefix("refs/heads/"))
    if name in protected:
        raise ActionRefused(
            "default-branch",
            f"'{name}' is a protected branch; rootloop only writes to "
            f"'{BRANCH_PREFIX}*' branches and never to the default branch",
        )
    if not name.startswith(BRANCH_PREFIX):
        raise ActionRefused(
            "default-branch",
            f"'{name}' is not a rootloop branch; rootloop only writes to "
            f"branches named '{BRANCH_PREFIX}<service>/<run>'",
        )
    if (
        not _BRANCH_CHARS.match(name)
        or ".." in name
        or "//" in name
        or name.endswith(("/", ".lock", "."))
        or "/." in name
    ):
        raise ActionRefused("default-branch", f"'{name}' is not a valid branch name")
    return name


def run_branch(service: str, run_id: str) -> str:
    """The branch of one investigation: ``rootloop/<service>/<run_id>``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", service).strip("-.") or "service"
    run = re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.") or "run"
    return f"{BRANCH_PREFIX}{slug}/{run}"


@dataclass(frozen=True)
class GitResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Git:
    """One repository on disk. ``cwd`` arguments let the same object drive its worktrees."""

    def __init__(self, repo: Path, *, timeout: float = 120.0) -> None:
        self.repo = Path(repo)
        self.timeout = timeout
        self._defaults: dict[str, str | None] = {}

    # -- plumbing ---------------------------------------------------------
    def run(
        self, *args: str, cwd: Path | None = None, check: bool = True, input: str | None = None
    ) -> GitResult:
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "GIT_AUTHOR_NAME": AUTHOR_NAME,
            "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
            "GIT_COMMITTER_NAME": AUTHOR_NAME,
            "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        }
        cmd = ("git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", *args)
        try:
            proc = subprocess.run(
                cmd,
                cwd=cwd or self.repo,
                env=env,
                input=input,
                capture_output=True,
                text=True,
                timeout=self.timeout,
            )
        except FileNotFoundError as exc:
            raise GitError(
                f"cannot run git in {cwd or self.repo}: {exc}",
                "install git and check the repository path",
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]} timed out after {self.timeout:g}s") from exc
        result = GitResult(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            tail = " ".join((proc.stderr or proc.stdout).split())[-400:]
            raise GitError(f"git {' '.join(args[:2])} failed (exit {proc.returncode}): {tail}")
        return result

    def out(self, *args: str, cwd: Path | None = None) -> str:
        return self.run(*args, cwd=cwd).stdout.strip()

    # -- questions --------------------------------------------------------
    def rev_parse(self, ref: str, cwd: Path | None = None) -> str:
        return self.out("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=cwd)

    def current_branch(self, cwd: Path | None = None) -> str:
        return self.out("symbolic-ref", "--short", "HEAD", cwd=cwd)

    def branch_exists(self, name: str) -> bool:
        return (
            self.run(
                "show-ref", "--verify", "--quiet", f"refs/heads/{name}", check=False
            ).returncode
            == 0
        )

    def remote_sha(self, branch: str, remote: str = "origin") -> str | None:
        line = self.out("ls-remote", remote, f"refs/heads/{branch}")
        return line.split()[0] if line else None

    def default_branch(self, remote: str = "origin") -> str | None:
        """The remote's HEAD branch, else the main worktree's checked-out branch. Cached."""
        if remote not in self._defaults:
            self._defaults[remote] = self._find_default(remote)
        return self._defaults[remote]

    def _find_default(self, remote: str) -> str | None:
        res = self.run("ls-remote", "--symref", remote, "HEAD", check=False)
        for line in res.stdout.splitlines():
            if line.startswith("ref:") and line.endswith("HEAD"):
                return line.split()[1].removeprefix("refs/heads/")
        res = self.run("symbolic-ref", "--short", "HEAD", check=False)
        return res.stdout.strip() or None

    def diff(self, base: str, head: str = "HEAD", cwd: Path | None = None) -> str:
        return self.run("diff", "--no-color", f"{base}..{head}", cwd=cwd).stdout

    def show_file(self, ref: str, path: str) -> str:
        return self.run("show", f"{ref}:{path}").stdout

    def is_sha(self, ref: str) -> bool:
        return bool(_SHA.match(ref))

    # -- writes: every one goes through check_branch ----------------------
    def _guard(self, branch: str, remote: str = "origin") -> str:
        return check_branch(branch, self.default_branch(remote))

    def create_branch(self, name: str, from_ref: str) -> str:
        """Create (or find) a rootloop branch at ``from_ref``; returns its head sha."""
        name = self._guard(name)
        if self.branch_exists(name):
            return self.rev_parse(f"refs/heads/{name}")
        self.run("branch", "--no-track", name, self.rev_parse(from_ref))
        return self.rev_parse(f"refs/heads/{name}")

    def worktree_add(self, path: Path, branch: str, from_ref: str) -> str:
        """A worktree for ``branch`` at ``path``, creating the branch from ``from_ref``."""
        branch = self._guard(branch)
        self.create_branch(branch, from_ref)
        self.run("worktree", "add", str(path), branch)
        return self.rev_parse("HEAD", cwd=path)

    def fetch(self, remote: str = "origin") -> bool:
        """Bring the remote's branches up to date (read-only for the remote)."""
        return self.run("fetch", "--quiet", remote, check=False).returncode == 0

    def has_commit(self, sha: str) -> bool:
        return self.run("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0

    def worktree_remove(self, path: Path) -> None:
        self.run("worktree", "remove", "--force", str(path), check=False)
        self.run("worktree", "prune", check=False)

    def commit_paths(self, worktree: Path, paths: Sequence[str], message: str) -> str:
        """Stage exactly ``paths`` (changed, added or deleted) and commit them on the
        worktree's (rootloop) branch.

        Why not everything: the repository's tests run in this worktree before a commit
        and leave what they leave (``__pycache__``, coverage files, logs) wherever the
        repository does not ignore it; a fix's commit carries the fix and nothing else.
        """
        self._guard(self.current_branch(cwd=worktree))
        if not paths:
            raise GitError("nothing to commit: no path was named")
        self.run("add", "--all", "--", *paths, cwd=worktree)
        if not self.run("diff", "--cached", "--quiet", cwd=worktree, check=False).returncode:
            raise GitError("nothing to commit: the edits left the tree unchanged")
        self.run("commit", "--no-verify", "-F", "-", cwd=worktree, input=message)
        return self.rev_parse("HEAD", cwd=worktree)

    def revert(self, worktree: Path, commit: str, message: str | None = None) -> str:
        """Revert ``commit`` with a new commit on the worktree's (rootloop) branch."""
        self._guard(self.current_branch(cwd=worktree))
        res = self.run("revert", "--no-edit", "--no-commit", commit, cwd=worktree, check=False)
        if res.returncode != 0:
            self.run("revert", "--abort", cwd=worktree, check=False)
            tail = " ".join(res.stderr.split())[-300:]
            raise GitError(
                f"cannot revert {commit[:12]}: {tail}",
                "the commit conflicts with later changes on the branch",
            )
        subject = self.out("log", "-1", "--format=%s", commit, cwd=worktree)
        msg = message or f'Revert "{subject}"\n\nThis reverts commit {commit}.\n'
        self.run("commit", "--no-verify", "-F", "-", cwd=worktree, input=msg)
        return self.rev_parse("HEAD", cwd=worktree)

    def push(self, branch: str, remote: str = "origin") -> str:
        """Push one rootloop branch to the same-named branch on ``remote``. No force."""
        branch = self._guard(branch, remote)
        self.run("push", "--porcelain", remote, f"refs/heads/{branch}:refs/heads/{branch}")
        return self.rev_parse(f"refs/heads/{branch}")


def seed_repository(
    work: Path,
    origin: Path,
    files: dict[str, str],
    *,
    branch: str = "main",
    message: str = "Initial commit",
) -> Git:
    """Create a brand-new repository with one commit and a bare ``origin`` cloned from it.

    For the lab and tests: it only ever writes to directories it creates (both
    must not exist yet), so it cannot touch anybody's default branch; it is the
    one commit outside ``check_branch`` and the source scan names it as such.
    """
    for path in (work, origin):
        if path.exists() and any(path.iterdir()):
            raise GitError(
                f"{path} already exists and is not empty",
                "seed_repository only creates new repositories",
            )
    work.mkdir(parents=True, exist_ok=True)
    git = Git(work)
    git.run("init", "--quiet", f"--initial-branch={branch}")
    for rel, text in files.items():
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    git.run("add", "--all")
    git.run("commit", "--quiet", "--no-verify", "-m", message)
    git.run("clone", "--quiet", "--bare", str(work), str(origin))
    git.run("remote", "add", "origin", str(origin))
    git.run("fetch", "--quiet", "origin")
    git.run("branch", f"--set-upstream-to=origin/{branch}", branch)
    return git
