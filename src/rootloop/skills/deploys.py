"""The git side of "this deploy broke it": which files a deploy changed.

Skills that know which commit runs and which ran before it (the ECS check reads both
from the task definitions) call ``collect`` with the service's repository and put the
result in their finding as evidence (``rootloop.models.deploys``). The bad-deploy
signature then reads that evidence; reasoning itself never runs git.

Blocking (it runs git): call it through ``CheckContext.run_blocking``.
"""

from __future__ import annotations

from pathlib import Path

from rootloop.models import Evidence
from rootloop.models.deploys import DeployDiff
from rootloop.platforms.local.git import Git, GitError

#: git may fetch; a check must end, so every git call carries this bound (seconds)
GIT_TIMEOUT = 30.0


def collect(
    repo: Path, previous: str, commit: str, remote: str = "origin", timeout: float = GIT_TIMEOUT
) -> DeployDiff | Evidence:
    """The files changed from ``previous`` to ``commit``, or evidence of why there is no
    such diff (unknown commits, a rollback, an unrelated history, git failing).

    Only a forward deploy has a diff: ``previous`` must be a strict ancestor of
    ``commit``. A root commit without a previous deploy never gets here (no ``previous``).
    """
    if previous == commit:
        return no_diff(previous, commit, "the previous deploy runs the same commit")
    git = Git(repo, timeout=timeout)
    try:
        if not (git.has_commit(commit) and git.has_commit(previous)):
            git.fetch(remote)
        if not (git.has_commit(commit) and git.has_commit(previous)):
            return no_diff(previous, commit, f"the commits are not in {repo} nor {remote}")
        ancestor = git.run("merge-base", "--is-ancestor", previous, commit, check=False)
        if ancestor.returncode != 0:
            return no_diff(
                previous, commit, "the previous commit is not an ancestor (not a forward deploy)"
            )
        changed = git.out("diff", "--name-only", previous, commit)
    except (GitError, OSError) as exc:
        return no_diff(previous, commit, f"git failed: {exc}")
    files = tuple(c.strip() for c in changed.splitlines() if c.strip())
    return DeployDiff(previous=previous, commit=commit, files=files)


def no_diff(previous: str, commit: str, why: str) -> Evidence:
    """Evidence that says why a deploy has no diff (so a reader knows it was looked for)."""
    return Evidence(
        kind="text",
        title="no diff for the deploy",
        text=f"{previous[:12]}..{commit[:12]}: {' '.join(why.split())[:300]}",
    )
