"""``github-actions``: is the service's CI green, and did the deployed commit pass?

Reads the latest runs of one workflow on one branch; for a failed run, the
failed job and step and the tail of that step's log (from the run's logs zip,
else the job's plain-text log). A bad token or a rate limit is an ``unknown``
finding that says what is wrong and when the limit resets, never a crash.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from rootloop.models import Evidence, Finding, Signal, Status
from rootloop.models.nodes import Node, SkillSettings
from rootloop.platforms.github.actions import FAILED, ActionsClient, Job, WorkflowRun
from rootloop.platforms.github.client import DEFAULT_API_URL, make_client, resolve_token
from rootloop.platforms.github.errors import (
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnreachable,
)
from rootloop.platforms.github.logs import error_lines, section, step_log, tail
from rootloop.skills import verdicts
from rootloop.skills.base import BaseSkill, CheckContext
from rootloop.skills.verdicts import Rule, Value


class GitHubActionsSettings(SkillSettings):
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name")
    workflow: str | int | None = Field(
        default=None, description="workflow file name (ci.yml) or id; all workflows if unset"
    )
    branch: str = "main"
    api_url: str = DEFAULT_API_URL
    token_env: str = "GITHUB_TOKEN"
    deployed_sha: str | None = Field(default=None, pattern=r"^[0-9a-f]{7,40}$")
    runs: int = Field(default=10, ge=1, le=100)
    log_lines: int = Field(default=60, ge=5, le=1000)


#: a workflow's signals (see ``rootloop.skills.verdicts``). A failed run is critical when
#: it breaks the deployed code; degraded when the deployed commit passed CI (the branch is
#: broken, the running service is not) or the run was cancelled.
RULES: tuple[Rule, ...] = (
    Rule("latest_status"),
    # did a completed run build the deployed commit and pass? unknown when none built it
    Rule("deployed_sha_passed", "among", good=(True,)),
    Rule("ci_conclusion", "among", bad=tuple(sorted(FAILED)), crit_on="breaks_deployed"),
    Rule("head_sha"),
    Rule("run_number"),
    Rule("consecutive_failures"),
    Rule("failed_job", "flag", on="run_failed", crit_on="breaks_deployed"),
    Rule("failed_step", "flag", on="run_failed", crit_on="breaks_deployed"),
)


def judge_runs(
    s: GitHubActionsSettings,
    newest: WorkflowRun,
    latest: WorkflowRun | None,
    streak: list[WorkflowRun],
    deployed: bool | None,
    job: Job | None,
) -> verdicts.Verdict:
    """The verdict on a workflow: ``newest`` is its newest run, ``latest`` the newest
    completed one (None: none completed yet), ``deployed`` whether the deployed commit
    passed (None: unknown), ``job`` the failed job of a failed ``latest``."""
    values: dict[str, Value] = {"latest_status": newest.status or ""}
    if s.deployed_sha:
        values["deployed_sha_passed"] = deployed
    failed = latest is not None and latest.failed
    if latest is not None:
        values["ci_conclusion"] = latest.conclusion
        values["head_sha"] = latest.head_sha
        values["run_number"] = latest.run_number
        values["consecutive_failures"] = len(streak)
    if failed and job is not None:
        values["failed_job"] = job.name
        step = job.failed_step()
        if step is not None:
            values["failed_step"] = step.name
    cancelled = latest is not None and latest.conclusion == "cancelled"
    facts: dict[str, Value] = {
        "run_failed": failed,
        "breaks_deployed": failed and not deployed and not cancelled,
    }
    return verdicts.assess(RULES, values, s, facts)


class GitHubActionsSkill(BaseSkill):
    name: ClassVar[str] = "github-actions"
    Settings: ClassVar[type[SkillSettings]] = GitHubActionsSettings
    default_timeout: ClassVar[float] = 20.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        s = node.settings
        assert isinstance(s, GitHubActionsSettings)
        token = resolve_token(s.token_env)
        gh = make_client(s.api_url, token, timeout=max(1.0, min(node.timeout, 30.0)))
        try:
            async with gh:
                return await self._check(node, ctx, s, ActionsClient(gh, s.repo, s.token_env))
        except GitHubUnreachable as exc:
            return self.unreachable(node, str(exc))
        except GitHubError as exc:
            return self._platform_finding(node, exc, token is not None, s.token_env)

    def _platform_finding(
        self, node: Node, exc: GitHubError, has_token: bool, token_env: str
    ) -> Finding:
        signals = [Signal(name="github_status", value=exc.status, status=Status.UNKNOWN)]
        text = str(exc)
        if isinstance(exc, GitHubRateLimited):
            what = "rate limited"
            if exc.reset_at:
                signals.append(
                    Signal(
                        name="rate_limit_reset",
                        value=exc.reset_at.isoformat(),
                        status=Status.UNKNOWN,
                    )
                )
        elif isinstance(exc, GitHubAuthError):
            what = "not authorised"
        elif isinstance(exc, GitHubNotFound):
            what = "not found"
        else:
            what = "failed"
        if not has_token and isinstance(exc, GitHubAuthError | GitHubNotFound):
            text += f"; no token was set (${token_env}, $GITHUB_TOKEN, $GH_TOKEN are empty)"
        return self.finding(
            node,
            Status.UNKNOWN,
            f"CI status unknown: GitHub {what}: {text}",
            signals=signals,
            error=text,
        )

    async def _check(
        self, node: Node, ctx: CheckContext, s: GitHubActionsSettings, api: ActionsClient
    ) -> Finding:
        runs = await api.runs(s.workflow, branch=s.branch, per_page=s.runs)
        wf = f"workflow {s.workflow}" if s.workflow is not None else "any workflow"
        if not runs:
            return self.finding(
                node, Status.UNKNOWN, f"no runs of {wf} on branch {s.branch} in {s.repo}"
            )
        latest = next((r for r in runs if r.completed), None)
        deployed = await self._deployed_passed(api, s, runs)
        streak = _failure_streak(runs)
        failed = latest if latest is not None and latest.failed else None
        job = next((j for j in await api.jobs(failed.id) if j.failed), None) if failed else None
        verdict = judge_runs(s, runs[0], latest, streak, deployed, job)
        if latest is None:
            summary = (
                f"{wf} on {s.branch}: run #{runs[0].run_number} is "
                f"{runs[0].status}, no completed run yet"
            )
            return self.finding(node, verdict.status, summary, signals=verdict.signals)
        if failed is None:
            summary = f"{wf} on {s.branch}: run #{latest.run_number} {latest.conclusion}"
            if deployed is False:
                summary += f"; the deployed commit {(s.deployed_sha or '')[:7]} did not pass"
            return self.finding(node, verdict.status, summary, signals=verdict.signals)
        return await self._failed(node, ctx, s, api, failed, job, streak, verdict, deployed, wf)

    async def _failed(
        self,
        node: Node,
        ctx: CheckContext,
        s: GitHubActionsSettings,
        api: ActionsClient,
        run: WorkflowRun,
        job: Job | None,
        streak: list[WorkflowRun],
        verdict: verdicts.Verdict,
        deployed: bool | None,
        wf: str,
    ) -> Finding:
        step = job.failed_step() if job else None
        evidence: list[Evidence] = []
        where = "unknown step"
        if job is not None:
            where = f"job '{job.name}'" + (f", step '{step.name}'" if step else "")
            log, source = await self._log(api, run, job)
            if log:
                errors = error_lines(log)
                title = (
                    f"{where} of run #{run.run_number} ({run.head_sha[:7]}) "
                    f"— last lines, from {source}"
                )
                evidence.append(
                    Evidence(
                        kind="log", title=title, text=ctx.redactor.text(tail(log, s.log_lines))
                    )
                )
                if errors:
                    evidence.append(
                        Evidence(
                            kind="text",
                            title="error annotations",
                            text=ctx.redactor.text("\n".join(errors)),
                        )
                    )
        summary = (
            f"{wf} on {s.branch}: run #{run.run_number} {run.conclusion} at {where} "
            f"(commit {run.head_sha[:7]}; {len(streak)} failed in a row)"
        )
        if deployed:
            summary += f"; the deployed commit {(s.deployed_sha or '')[:7]} passed"
        evidence.append(Evidence(kind="event", title="run", text=run.html_url or str(run.id)))
        return self.finding(
            node,
            verdict.status,
            summary,
            signals=verdict.signals,
            evidence=evidence,
            anomaly_started_at=streak[-1].created_at if streak else None,
        )

    async def _log(self, api: ActionsClient, run: WorkflowRun, job: Job) -> tuple[str, str]:
        """The failing step's log: from the run's zip, else the job's plain-text log."""
        step = job.failed_step()
        try:
            archive = await api.run_logs(run.id)
            text = step_log(
                archive, job.name, step.number if step else -1, step.name if step else ""
            )
            if text:
                return text, "the run's logs archive"
        except GitHubError:
            pass  # logs expired (410), or no access to archives: try the job's own log
        try:
            text = await api.job_log(job.id)
        except GitHubError as exc:  # the run still failed; say why there is no log
            return f"(log not available: {exc})", "GitHub"
        return section(text, step.name if step else ""), "the job log"

    async def _deployed_passed(
        self, api: ActionsClient, s: GitHubActionsSettings, runs: list[WorkflowRun]
    ) -> bool | None:
        """Whether a completed run built the deployed commit and succeeded; None if unknown."""
        if not s.deployed_sha:
            return None
        mine = [r for r in runs if r.head_sha.startswith(s.deployed_sha) and r.completed]
        if not mine and len(s.deployed_sha) == 40:
            mine = [
                r
                for r in await api.runs(s.workflow, head_sha=s.deployed_sha, per_page=5)
                if r.completed
            ]
        if not mine:
            return None
        return any(r.passed for r in mine)


def _failure_streak(runs: list[WorkflowRun]) -> list[WorkflowRun]:
    """Completed runs that failed, newest first, up to the last one that did not."""
    streak = []
    for r in (r for r in runs if r.completed):
        if not r.failed:
            break
        streak.append(r)
    return streak
