"""What a forge can do for rootloop: branches, pushes, one PR per run, CI runs. Never merge.

The ``Forge`` protocol has no merge method on purpose, and every implementation
passes each branch it writes through ``guard_branch`` (the git wrapper's
``check_branch``), so no path reaches the default branch. PR bodies are fitted to
GitHub's limit here, once, for every forge.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from rootloop.platforms.local.git import BRANCH_PREFIX, check_branch, run_branch

__all__ = [
    "BODY_LIMIT",
    "BRANCH_PREFIX",
    "CiRun",
    "Forge",
    "PullRequest",
    "fit_body",
    "guard_branch",
    "pr_title",
    "run_branch",
]

#: GitHub rejects PR bodies longer than this many characters.
BODY_LIMIT = 65_536

guard_branch = check_branch


class PullRequest(BaseModel):
    """A PR as rootloop knows it; ``created`` tells a new PR from an updated one."""

    number: int | None = None
    id: str
    url: str
    branch: str
    base: str
    title: str
    labels: list[str] = []
    created: bool = False
    state: str = "open"
    body_truncated: bool = False
    head_sha: str | None = None


class CiRun(BaseModel):
    """One CI run on a branch or commit, forge-neutral."""

    id: str
    name: str
    branch: str | None = None
    head_sha: str
    status: str  # queued | in_progress | completed
    conclusion: str | None = None  # success | failure | cancelled | ...
    url: str = ""
    created_at: datetime | None = None

    @property
    def passed(self) -> bool:
        return self.status == "completed" and self.conclusion == "success"

    @property
    def failed(self) -> bool:
        return self.status == "completed" and self.conclusion not in (
            None,
            "success",
            "skipped",
            "neutral",
        )


@runtime_checkable
class Forge(Protocol):
    """Where rootloop's branches and PRs live. There is no merge, by design."""

    name: str

    async def default_branch(self) -> str: ...

    async def create_branch(self, name: str, from_ref: str) -> str:
        """Create ``name`` (a ``rootloop/`` branch) at ``from_ref``; returns its sha."""
        ...

    async def push(self, branch: str) -> str:
        """Publish the local branch to the remote; returns the pushed sha."""
        ...

    async def open_or_update_pr(
        self, branch: str, title: str, body: str, labels: Sequence[str] = ()
    ) -> PullRequest: ...

    async def get_pr(self, branch: str) -> PullRequest | None: ...

    async def ci_runs(self, branch: str | None = None, sha: str | None = None) -> list[CiRun]: ...


def pr_title(title: str) -> str:
    """A PR title as it may leave: redacted like the body."""
    from rootloop.redact import boundary

    return boundary().text(title)


def fit_body(body: str, limit: int = BODY_LIMIT) -> tuple[str, bool]:
    """Redact and trim a PR body to ``limit`` characters, saying so at the end; (body,
    trimmed?). Every forge sends its bodies through here: the last step before they leave."""
    from rootloop.redact import boundary

    body = boundary().text(body)
    if len(body) <= limit:
        return body, False
    note = (
        f"\n\n---\n> **Trimmed by rootloop:** this body was {len(body):,} characters, "
        f"over the forge's limit of {limit:,}. The full report is in the run's "
        f"state directory.\n"
    )
    keep = body[: max(0, limit - len(note))]
    cut = keep.rfind("\n")
    if cut > len(keep) // 2:
        keep = keep[:cut]
    if keep.count("```") % 2:  # do not leave a code fence (a Mermaid graph) open
        keep = keep[: max(0, len(keep) - 4)] + "\n```"
    return keep + note, True
