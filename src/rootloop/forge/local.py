"""A forge made of a git repository, its remote on disk, and the state directory.

The lab uses this one. A "pull request" is the pushed branch plus its Markdown
body and a small JSON of metadata:

    <state>/prs/<branch-slug>.md      the body, exactly what GitHub would show
    <state>/prs/<branch-slug>.json    number, branch, base, title, labels, head sha, times
    <state>/ci/<id>.json              CI runs (a ``CiRun`` each), written by a local CI runner

Opening a PR again for the same branch updates both files and keeps its number.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

from rootloop.errors import PlatformError
from rootloop.forge.base import CiRun, PullRequest, fit_body, guard_branch, pr_title
from rootloop.models import utcnow
from rootloop.platforms.local.git import Git
from rootloop.state import atomic_write, atomic_write_json


def branch_slug(branch: str) -> str:
    return branch.replace("/", "--")


class LocalForge:
    name = "local"

    def __init__(
        self, repo: Path, state: Path, *, remote: str = "origin", git: Git | None = None
    ) -> None:
        self.git = git or Git(repo)
        self.remote = remote
        self.prs = Path(state) / "prs"
        self.ci = Path(state) / "ci"

    async def default_branch(self) -> str:
        return await asyncio.to_thread(self._default)

    def _default(self) -> str:
        return self.git.default_branch(self.remote) or "main"

    async def create_branch(self, name: str, from_ref: str) -> str:
        return await asyncio.to_thread(self.git.create_branch, name, from_ref)

    async def push(self, branch: str) -> str:
        return await asyncio.to_thread(self.git.push, branch, self.remote)

    async def get_pr(self, branch: str) -> PullRequest | None:
        meta = self.prs / f"{branch_slug(branch)}.json"
        if not meta.exists():
            return None
        pr = PullRequest.model_validate_json(meta.read_text(encoding="utf-8"))
        return pr.model_copy(update={"created": False})

    async def open_or_update_pr(
        self, branch: str, title: str, body: str, labels: Sequence[str] = ()
    ) -> PullRequest:
        return await asyncio.to_thread(self._open_or_update, branch, title, body, list(labels))

    def _open_or_update(self, branch: str, title: str, body: str, labels: list[str]) -> PullRequest:
        base = self._default()
        branch = guard_branch(branch, base)
        title = pr_title(title)
        head = self.git.remote_sha(branch, self.remote)
        if head is None:
            raise PlatformError(
                f"branch '{branch}' is not on remote '{self.remote}'",
                "push the branch before opening its pull request",
            )
        slug = branch_slug(branch)
        meta, md = self.prs / f"{slug}.json", self.prs / f"{slug}.md"
        old = (
            PullRequest.model_validate_json(meta.read_text(encoding="utf-8"))
            if meta.exists()
            else None
        )
        text, trimmed = fit_body(body)
        merged_labels = list(dict.fromkeys([*(old.labels if old else []), *labels]))
        pr = PullRequest(
            number=old.number if old else self._next_number(),
            id=slug,
            url=md.resolve().as_uri(),
            branch=branch,
            base=base,
            title=title,
            labels=merged_labels,
            created=old is None,
            body_truncated=trimmed,
            head_sha=head,
        )
        atomic_write(md, text)
        data = pr.model_dump(mode="json", exclude={"created"})
        data["updated_at"] = utcnow().isoformat()
        data["created_at"] = (
            json.loads(meta.read_text(encoding="utf-8")).get("created_at")
            if old
            else data["updated_at"]
        )
        atomic_write_json(meta, data)
        return pr

    def _next_number(self) -> int:
        numbers = [
            PullRequest.model_validate_json(p.read_text(encoding="utf-8")).number or 0
            for p in self.prs.glob("*.json")
        ]
        return max(numbers, default=0) + 1

    # -- CI ---------------------------------------------------------------
    def record_ci_run(self, run: CiRun) -> Path:
        """For a local CI runner (the lab): store one run where ``ci_runs`` finds it."""
        path = self.ci / f"{branch_slug(run.id)}.json"
        atomic_write_json(path, run.model_dump(mode="json"))
        return path

    async def ci_runs(self, branch: str | None = None, sha: str | None = None) -> list[CiRun]:
        runs = [
            CiRun.model_validate_json(p.read_text(encoding="utf-8")) for p in self.ci.glob("*.json")
        ]
        runs = [
            r
            for r in runs
            if (branch is None or r.branch == branch)
            and (sha is None or r.head_sha.startswith(sha))
        ]
        return sorted(runs, key=lambda r: (r.created_at is None, r.created_at), reverse=True)
