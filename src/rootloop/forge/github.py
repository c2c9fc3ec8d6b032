"""The GitHub forge: refs, contents, pull requests, labels and Actions runs over REST.

Branches are created with the git-refs API, files can be committed to a branch
with the contents API (when there is no local clone), and a local clone's
branch is pushed with the git wrapper. Every branch written passes
``guard_branch`` first. There is no merge: the pulls-merge endpoint is never
called (a test scans the source to prove it).
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Sequence
from typing import Any

from githubkit import GitHub

from rootloop.errors import PlatformError
from rootloop.forge.base import CiRun, PullRequest, fit_body, guard_branch, pr_title
from rootloop.platforms.github.actions import ActionsClient
from rootloop.platforms.github.client import (
    DEFAULT_API_URL,
    call,
    make_client,
    resolve_token,
    split_repo,
)
from rootloop.platforms.github.errors import GitHubError, GitHubNotFound
from rootloop.platforms.local.git import Git

_SHA40 = re.compile(r"^[0-9a-f]{40}$")


class GitHubForge:
    name = "github"

    def __init__(
        self,
        repo: str,
        *,
        api_url: str = DEFAULT_API_URL,
        token: str | None = None,
        token_env: str = "GITHUB_TOKEN",
        git: Git | None = None,
        remote: str = "origin",
        client: GitHub[Any] | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.repo = repo
        self.owner, self.repo_name = split_repo(repo)
        self.token_env = token_env
        self.gh = client or make_client(api_url, token or resolve_token(token_env), timeout=timeout)
        self.git, self.remote = git, remote
        self._default: str | None = None

    async def _call(self, what: str, coro: Any) -> Any:
        return await call(what, coro, self.token_env)

    async def default_branch(self) -> str:
        if self._default is None:
            resp = await self._call(
                f"reading repository {self.repo}",
                self.gh.rest.repos.async_get(self.owner, self.repo_name),
            )
            self._default = str(resp.json()["default_branch"])
        return self._default

    async def _guard(self, branch: str) -> str:
        return guard_branch(branch, await self.default_branch())

    async def resolve(self, ref: str) -> str:
        """A commit sha for a branch name or sha."""
        if _SHA40.match(ref):
            return ref
        resp = await self._call(
            f"reading ref heads/{ref}",
            self.gh.rest.git.async_get_ref(self.owner, self.repo_name, f"heads/{ref}"),
        )
        return str(resp.json()["object"]["sha"])

    # -- branches ---------------------------------------------------------
    async def create_branch(self, name: str, from_ref: str) -> str:
        name = await self._guard(name)
        sha = await self.resolve(from_ref)
        try:
            resp = await self._call(
                f"creating branch {name}",
                self.gh.rest.git.async_create_ref(
                    self.owner, self.repo_name, ref=f"refs/heads/{name}", sha=sha
                ),
            )
        except GitHubError as exc:
            if exc.status == 422 and "already exists" in str(exc):
                return await self.resolve(name)  # a resumed run: the branch is there
            raise
        return str(resp.json()["object"]["sha"])

    async def push(self, branch: str) -> str:
        branch = await self._guard(branch)
        if self.git is None:
            raise PlatformError(
                f"cannot push {branch}: this GitHub forge has no local clone",
                "give it the repository path, or commit with put_file()",
            )
        return await asyncio.to_thread(self.git.push, branch, self.remote)

    # -- contents ---------------------------------------------------------
    async def read_file(self, path: str, ref: str) -> str:
        resp = await self._call(
            f"reading {path} at {ref}",
            self.gh.rest.repos.async_get_content(self.owner, self.repo_name, path, ref=ref),
        )
        data = resp.json()
        if not isinstance(data, dict) or data.get("type") != "file":
            raise GitHubError(f"{path} at {ref} is not a file")
        return base64.b64decode(data.get("content", "")).decode("utf-8", errors="replace")

    async def put_file(self, branch: str, path: str, text: str, message: str) -> str:
        """Commit one file on a rootloop branch through the contents API; returns the commit."""
        branch = await self._guard(branch)
        body: dict[str, Any] = {
            "message": message,
            "branch": branch,
            "content": base64.b64encode(text.encode()).decode(),
            "committer": {"name": "rootloop", "email": "rootloop@localhost"},
        }
        try:
            old = await self._call(
                f"reading {path} on {branch}",
                self.gh.rest.repos.async_get_content(self.owner, self.repo_name, path, ref=branch),
            )
            body["sha"] = old.json()["sha"]
        except GitHubNotFound:
            pass  # a new file
        resp = await self._call(
            f"committing {path} on {branch}",
            self.gh.rest.repos.async_create_or_update_file_contents(
                self.owner, self.repo_name, path, data=body
            ),
        )
        return str(resp.json()["commit"]["sha"])

    # -- pull requests ----------------------------------------------------
    def _pr(self, data: dict[str, Any], *, created: bool, trimmed: bool = False) -> PullRequest:
        return PullRequest(
            number=data["number"],
            id=str(data.get("id", data["number"])),
            url=data.get("html_url", ""),
            branch=data["head"]["ref"],
            base=data["base"]["ref"],
            title=data.get("title", ""),
            labels=[lb["name"] for lb in data.get("labels", [])],
            created=created,
            state=data.get("state", "open"),
            body_truncated=trimmed,
            head_sha=data["head"].get("sha"),
        )

    async def get_pr(self, branch: str) -> PullRequest | None:
        resp = await self._call(
            f"listing pull requests for {branch}",
            self.gh.rest.pulls.async_list(
                self.owner, self.repo_name, head=f"{self.owner}:{branch}", state="open", per_page=10
            ),
        )
        found = [p for p in resp.json() if p["head"]["ref"] == branch]
        return self._pr(found[0], created=False) if found else None

    async def open_or_update_pr(
        self, branch: str, title: str, body: str, labels: Sequence[str] = ()
    ) -> PullRequest:
        base = await self.default_branch()
        branch = guard_branch(branch, base)
        text, trimmed = fit_body(body)
        title = pr_title(title)
        existing = await self.get_pr(branch)
        if existing is None:
            resp = await self._call(
                f"opening a pull request for {branch}",
                self.gh.rest.pulls.async_create(
                    self.owner, self.repo_name, title=title, head=branch, base=base, body=text
                ),
            )
            pr = self._pr(resp.json(), created=True, trimmed=trimmed)
        else:
            resp = await self._call(
                f"updating pull request #{existing.number}",
                self.gh.rest.pulls.async_update(
                    self.owner, self.repo_name, existing.number, title=title, body=text
                ),
            )
            pr = self._pr(resp.json(), created=False, trimmed=trimmed)
        if labels:
            resp = await self._call(
                f"labelling pull request #{pr.number}",
                self.gh.rest.issues.async_add_labels(
                    self.owner, self.repo_name, pr.number, labels=list(labels)
                ),
            )
            pr = pr.model_copy(update={"labels": [lb["name"] for lb in resp.json()]})
        return pr

    # -- CI ---------------------------------------------------------------
    async def ci_runs(self, branch: str | None = None, sha: str | None = None) -> list[CiRun]:
        runs = await ActionsClient(self.gh, self.repo, self.token_env).runs(
            branch=branch, head_sha=sha, per_page=20
        )
        return [
            CiRun(
                id=str(r.id),
                name=r.name or "",
                branch=r.head_branch,
                head_sha=r.head_sha,
                status=r.status or "",
                conclusion=r.conclusion,
                url=r.html_url,
                created_at=r.created_at,
            )
            for r in runs
        ]
