"""Applying a code fix in a worktree of its own, on the run's branch, never anywhere else.

A ``RunWorkspace`` owns ``git worktree`` checkout of ``rootloop/<service>/<run_id>``
made from the deployed commit. Edits are search-and-replace (each search must
match exactly once, checked for every edit before any file is written) or a
unified diff (``git apply --check`` first). Commits are authored by rootloop and
say what changed, why, and which run made them. Blocking: call it from the loop
through ``asyncio.to_thread``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from rootloop.errors import PlatformError
from rootloop.models.actions import FileEdit
from rootloop.platforms.local.git import Git, GitError, run_branch
from rootloop.redact import boundary


class EditError(PlatformError):
    """An edit cannot be applied as written (no match, several matches, bad path)."""


class CommitResult(BaseModel):
    sha: str
    branch: str
    message: str
    diff: str
    files: list[str] = []


class TestRun(BaseModel):
    """The repository's test command, run in the worktree."""

    __test__ = False  # not a pytest class

    command: str
    exit_code: int
    output_tail: str
    duration_s: float
    timed_out: bool = False

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


#: what asks CI not to run a pushed commit: GitHub Actions' documented markers (GitLab,
#: Bitbucket, CircleCI and Azure Pipelines read ``[skip ci]``/``[ci skip]`` too) and its
#: ``skip-checks: true`` trailer
CI_SKIP_MARKERS = ("[skip ci]", "[ci skip]", "[no ci]", "[skip actions]", "[actions skip]")
CI_SKIP_TRAILER = re.compile(r"^skip-checks:\s*true\s*$", re.I | re.M)
_CI_SKIP_TEXT = re.compile(
    "|".join(re.escape(m) for m in CI_SKIP_MARKERS) + r"|skip-checks:\s*true", re.I
)


def _without_ci_skip_markers(text: str) -> str:
    """``text`` with every skip marker taken out, until none is left: one pass could join
    the text around a removed marker into a new one (``[skip [skip ci]ci]``)."""
    while True:
        cleaned = _CI_SKIP_TEXT.sub("", text)
        if cleaned == text:
            return text
        text = cleaned


def asks_to_skip_ci(message: str) -> bool:
    """Whether a commit message asks CI not to run it."""
    low = message.lower()
    return any(m in low for m in CI_SKIP_MARKERS) or bool(CI_SKIP_TRAILER.search(message))


def commit_message(
    title: str,
    why: str,
    *,
    service: str,
    run_id: str,
    iteration: int | None = None,
    step: str | None = None,
    skip_ci: bool = False,
) -> str:
    """What changed (subject), why (body), and which investigation made it (trailers).

    Redacted: a commit message is pushed, and a pushed commit cannot be taken back. Only
    rootloop decides whether CI runs (``skip_ci``: the incident record, which changes no
    code): a title or reason that came from a model or a log cannot switch CI off for a
    fix, so every line of the assembled message (the subject once its whitespace is
    joined, the trailers with the map's names) is cleared of skip markers before the
    record's own marker is added."""
    clean = boundary()
    lines = [" ".join(clean.text(title).split()), ""]
    why = clean.text(why).strip()
    if why:
        lines += [why, ""]
    lines.append(f"Rootloop-Service: {service}")
    lines.append(f"Rootloop-Run: {run_id}")
    if iteration is not None:
        lines.append(f"Rootloop-Iteration: {iteration}")
    if step is not None:
        lines.append(f"Rootloop-Step: {step}")
    lines = [_without_ci_skip_markers(line) for line in "\n".join(lines).split("\n")]
    lines[0] = lines[0][: 72 - 10 * skip_ci] or "rootloop fix"
    if skip_ci:
        lines[0] += f" {CI_SKIP_MARKERS[0]}"
    return "\n".join(lines) + "\n"


class RunWorkspace:
    """The worktree of one investigation."""

    def __init__(
        self,
        repo: Path,
        *,
        service: str,
        run_id: str,
        base_ref: str,
        root: Path,
        git: Git | None = None,
    ) -> None:
        self.git = git or Git(repo)
        self.service, self.run_id, self.base_ref = service, run_id, base_ref
        self.branch = run_branch(service, run_id)
        self.path = Path(root) / self.branch.removeprefix("rootloop/")

    # -- lifecycle --------------------------------------------------------
    def open(self) -> str:
        """Create the worktree (or reuse it after a resume); returns its head sha."""
        if (self.path / ".git").exists():
            if self.git.current_branch(cwd=self.path) != self.branch:
                raise GitError(
                    f"{self.path} holds another branch than {self.branch}",
                    "remove the stale worktree directory",
                )
            return self.head()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.git.run("worktree", "prune", check=False)
        return self.git.worktree_add(self.path, self.branch, self.base_ref)

    def close(self) -> None:
        """Remove the worktree; the branch and its commits stay."""
        self.git.worktree_remove(self.path)

    def head(self) -> str:
        return self.git.rev_parse("HEAD", cwd=self.path)

    # -- edits ------------------------------------------------------------
    def _file(self, rel: str) -> Path:
        target = (self.path / rel).resolve()
        if not target.is_relative_to(self.path.resolve()) or "/.git/" in f"/{rel}/":
            raise EditError(f"edit path '{rel}' leaves the repository")
        return target

    def apply_edits(self, edits: Sequence[FileEdit]) -> list[str]:
        """Apply every edit or none. Each ``search`` must occur exactly once."""
        if not edits:
            raise EditError("no edits to apply")
        pending: dict[Path, str] = {}
        for i, edit in enumerate(edits):
            target = self._file(edit.path)
            text = pending.get(target)
            if text is None:
                if not target.is_file():
                    if edit.search:
                        raise EditError(
                            f"edit {i + 1}: file '{edit.path}' does not exist",
                            "use an empty search to create a new file",
                        )
                    text = ""
                else:
                    text = target.read_text(encoding="utf-8")
            if not edit.search:
                if text:
                    raise EditError(
                        f"edit {i + 1}: empty search on existing '{edit.path}'",
                        "quote the exact text to replace",
                    )
                pending[target] = edit.replace
                continue
            count = text.count(edit.search)
            if count != 1:
                where = "does not occur" if count == 0 else f"occurs {count} times"
                raise EditError(
                    f"edit {i + 1}: the search text {where} in '{edit.path}'",
                    "quote a longer, exact excerpt that appears exactly once",
                )
            pending[target] = text.replace(edit.search, edit.replace, 1)
        root = self.path.resolve()
        for target, text in pending.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return sorted(str(t.relative_to(root)) for t in pending)

    def apply_diff(self, diff: str) -> list[str]:
        """Apply a unified diff; checked first so a bad hunk changes nothing."""
        if not diff.endswith("\n"):
            diff += "\n"
        check = self.git.run(
            "apply", "--check", "--whitespace=nowarn", "-", cwd=self.path, input=diff, check=False
        )
        if check.returncode != 0:
            raise EditError(
                f"the diff does not apply: {' '.join(check.stderr.split())[-300:]}",
                "regenerate it against the deployed commit",
            )
        files = self.git.run("apply", "--numstat", "-", cwd=self.path, input=diff).stdout
        self.git.run("apply", "--whitespace=nowarn", "-", cwd=self.path, input=diff)
        return sorted(line.split("\t", 2)[2] for line in files.splitlines() if line.strip())

    # -- tests, commits ---------------------------------------------------
    def run_tests(self, command: str, *, timeout: float = 600.0, tail_lines: int = 40) -> TestRun:
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                shlex.split(command), cwd=self.path, capture_output=True, text=True, timeout=timeout
            )
            code, out, timed_out = proc.returncode, proc.stdout + proc.stderr, False
        except subprocess.TimeoutExpired as exc:
            raw = (exc.stdout or b"") + (exc.stderr or b"")
            out = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            code, timed_out = -1, True
        except FileNotFoundError as exc:
            code, out, timed_out = 127, str(exc), False
        tail = "\n".join(out.splitlines()[-tail_lines:])
        return TestRun(
            command=command,
            exit_code=code,
            output_tail=tail,
            duration_s=round(time.perf_counter() - start, 3),
            timed_out=timed_out,
        )

    def commit(
        self,
        title: str,
        why: str,
        *,
        paths: Sequence[str],
        iteration: int | None = None,
        step: str | None = None,
        skip_ci: bool = False,
    ) -> CommitResult:
        """Commit ``paths`` (what the change edited, repository-relative) and nothing else
        the worktree holds: the tests' leftovers never ride along into the PR."""
        before = self.head()
        message = commit_message(
            title,
            why,
            service=self.service,
            run_id=self.run_id,
            iteration=iteration,
            step=step,
            skip_ci=skip_ci,
        )
        sha = self.git.commit_paths(self.path, paths, message)
        self._refuse_known_secrets(before, sha)
        return self._result(before, sha, message)

    def revert(self, commit: str, *, iteration: int | None = None) -> CommitResult:
        """Undo one of this run's commits with a new commit on the run branch (carrying the
        iteration's trailer, so a resumed run finds it instead of reverting twice)."""
        before = self.head()
        subject = self.git.out("log", "-1", "--format=%s", commit, cwd=self.path)
        message = commit_message(
            f'Revert "{subject}"',
            f"This reverts commit {commit}: the fix did not help.",
            service=self.service,
            run_id=self.run_id,
            iteration=iteration,
        )
        sha = self.git.revert(self.path, commit, message)
        return self._result(before, sha, message)

    def _refuse_known_secrets(self, before: str, sha: str) -> None:
        """A commit that adds a registered secret (an edit that wrote a password into a file)
        is undone before anything can push it. Only known values are checked: the shape
        patterns would flag ordinary code such as ``password = os.environ[...]``."""
        added = "\n".join(
            line[1:]
            for line in self.git.diff(before, sha, cwd=self.path).splitlines()
            if line.startswith("+") and not line.startswith("+++")
        )
        if boundary().holds_known_secret(added):
            self.git.run("reset", "--hard", before, cwd=self.path)
            raise EditError(
                "the change would commit a secret rootloop knows (a password or token from "
                "the environment or the map); it was undone before any push",
                "fix the code without writing the secret into it",
            )

    def _result(self, before: str, sha: str, message: str) -> CommitResult:
        files = self.git.out("diff", "--name-only", f"{before}..{sha}", cwd=self.path)
        return CommitResult(
            sha=sha,
            branch=self.branch,
            message=message,
            diff=self.git.diff(before, sha, cwd=self.path),
            files=[f for f in files.splitlines() if f],
        )
