"""GitHub Actions reads: workflow runs, their jobs and steps, and their logs.

Responses are read into small models of our own (only the fields rootloop
uses), not githubkit's full schema: GitHub Enterprise versions and the lab's
GitHub-shaped server differ in fields rootloop does not need.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from githubkit import GitHub
from pydantic import BaseModel

from rootloop.platforms.github.client import call, split_repo

FAILED = frozenset({"failure", "timed_out", "startup_failure", "cancelled", "action_required"})


class WorkflowRun(BaseModel):
    id: int
    name: str | None = None
    run_number: int = 0
    run_attempt: int = 1
    head_branch: str | None = None
    head_sha: str
    event: str = ""
    status: str | None = None
    conclusion: str | None = None
    html_url: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def failed(self) -> bool:
        return self.completed and self.conclusion in FAILED

    @property
    def passed(self) -> bool:
        return self.completed and self.conclusion == "success"


class Step(BaseModel):
    name: str
    number: int
    status: str
    conclusion: str | None = None


class Job(BaseModel):
    id: int
    run_id: int
    name: str
    head_sha: str = ""
    status: str
    conclusion: str | None = None
    html_url: str | None = None
    steps: list[Step] = []

    @property
    def failed(self) -> bool:
        return self.status == "completed" and self.conclusion in FAILED

    def failed_step(self) -> Step | None:
        return next((s for s in self.steps if s.conclusion in FAILED), None)


class ActionsClient:
    """Read-only Actions calls for one repository."""

    def __init__(self, gh: GitHub[Any], repo: str, token_env: str = "GITHUB_TOKEN") -> None:
        self.gh = gh
        self.repo = repo
        self.owner, self.name = split_repo(repo)
        self.token_env = token_env

    async def runs(
        self,
        workflow: str | int | None = None,
        *,
        branch: str | None = None,
        head_sha: str | None = None,
        per_page: int = 10,
    ) -> list[WorkflowRun]:
        """Newest first, as GitHub lists them."""
        params: dict[str, Any] = {"per_page": per_page}
        if branch:
            params["branch"] = branch
        if head_sha:
            params["head_sha"] = head_sha
        actions = self.gh.rest.actions
        if workflow is None:
            coro = actions.async_list_workflow_runs_for_repo(self.owner, self.name, **params)
        else:
            coro = actions.async_list_workflow_runs(self.owner, self.name, workflow, **params)
        resp = await call(f"listing workflow runs of {self.repo}", coro, self.token_env)
        return [WorkflowRun.model_validate(r) for r in resp.json().get("workflow_runs", [])]

    async def jobs(self, run_id: int) -> list[Job]:
        resp = await call(
            f"listing jobs of run {run_id}",
            self.gh.rest.actions.async_list_jobs_for_workflow_run(
                self.owner, self.name, run_id, filter_="latest", per_page=100
            ),
            self.token_env,
        )
        return [Job.model_validate(j) for j in resp.json().get("jobs", [])]

    async def run_logs(self, run_id: int) -> bytes:
        """The run's logs zip (GitHub answers 302 to a short-lived storage URL)."""
        resp = await call(
            f"downloading the logs of run {run_id}",
            self.gh.rest.actions.async_download_workflow_run_logs(self.owner, self.name, run_id),
            self.token_env,
        )
        return resp.content

    async def job_log(self, job_id: int) -> str:
        """One job's whole log as plain text."""
        resp = await call(
            f"downloading the log of job {job_id}",
            self.gh.rest.actions.async_download_job_logs_for_workflow_run(
                self.owner, self.name, job_id
            ),
            self.token_env,
        )
        return resp.text
