"""github-actions' verdict table against its hand-written verdict (written out here as
``old_verdict``) over every kind of latest run, deployed-commit answer and failed job.

Where they differ the difference is deliberate and listed in ``CHANGED``:
- a deployed commit whose CI result is unknown was a *degraded* signal and an *ok*
  finding; both are now ``unknown`` (the check cannot vouch for what it could not see);
- a completed run without a conclusion was ok; it is now ``unknown`` (same reason);
- ``ci_conclusion`` was degraded for any conclusion but success; now it is degraded for
  a failed one (``neutral``, ``skipped`` and ``stale`` are not failures, and the finding
  never counted them), and critical exactly when the finding was (a failure that breaks
  the deployed code);
- ``failed_job`` and ``failed_step`` were critical even when the finding was degraded
  (the deployed commit passed, or the run was cancelled); now they say what it says.
The finding is as bad as its worst signal.
"""

from __future__ import annotations

import itertools

import pytest

from rootloop.models import Status, worst
from rootloop.platforms.github.actions import FAILED, Job, Step, WorkflowRun
from rootloop.skills.github_actions import GitHubActionsSettings, judge_runs

OK, DEG, CRIT, UNKNOWN = Status.OK, Status.DEGRADED, Status.CRITICAL, Status.UNKNOWN
CONCLUSIONS = ["success", "failure", "cancelled", "timed_out", "neutral", "skipped", None]


def run(status: str, conclusion: str | None) -> WorkflowRun:
    return WorkflowRun(id=1, run_number=7, head_sha="a" * 40, status=status, conclusion=conclusion)


def job(kind: str) -> Job | None:
    if kind == "none":
        return None
    steps = [Step(name="test", number=3, status="completed", conclusion="failure")]
    return Job(id=2, run_id=1, name="build", status="completed", conclusion="failure",
               steps=steps if kind == "job and step" else [])  # fmt: skip


def old_verdict(latest, deployed, has_sha, the_job) -> tuple[Status, dict[str, Status]]:
    """The hand-written verdict, as it was (statuses only)."""
    sig = {"latest_status": OK}
    if has_sha:
        sig["deployed_sha_passed"] = OK if deployed else DEG
    if latest is None:
        return (OK if deployed is not False else DEG), sig
    sig.update(
        ci_conclusion=OK if latest.passed else DEG,
        head_sha=OK,
        run_number=OK,
        consecutive_failures=OK,
    )
    if not latest.failed:
        return (OK if deployed is not False else DEG), sig
    if the_job is not None:
        sig["failed_job"] = CRIT
        if the_job.failed_step() is not None:
            sig["failed_step"] = CRIT
    status = DEG if deployed or latest.conclusion == "cancelled" else CRIT
    return status, sig


def changed(latest, deployed, has_sha, status, sig) -> tuple[Status, dict[str, Status]]:
    """The deliberate differences (see the module docstring)."""
    sig = dict(sig)
    if has_sha and deployed is None:
        sig["deployed_sha_passed"] = UNKNOWN
    if latest is not None:
        conclusion = latest.conclusion
        failed = conclusion in FAILED
        breaks = failed and not deployed and conclusion != "cancelled"
        sig["ci_conclusion"] = (
            UNKNOWN if conclusion is None else CRIT if breaks else DEG if failed else OK
        )
        for name in ("failed_job", "failed_step"):
            if name in sig:
                sig[name] = CRIT if breaks else DEG
    return worst(list(sig.values())), sig


LATEST = [None] + [run("completed", c) for c in CONCLUSIONS]
#: without a deployed commit in the settings there is no answer about it (None)
GRID = [
    (latest, deployed, has_sha, kind)
    for latest, deployed, has_sha, kind in itertools.product(
        LATEST, [True, False, None], [True, False], ["none", "job", "job and step"]
    )
    if has_sha or deployed is None
]


@pytest.mark.parametrize(("latest", "deployed", "has_sha", "job_kind"), GRID)
def test_the_table_judges_as_the_old_verdict_did_but_for_the_listed_changes(
    latest, deployed, has_sha, job_kind
):
    the_job = job(job_kind) if latest is not None and latest.failed else None
    s = GitHubActionsSettings(repo="o/r", deployed_sha="a" * 40 if has_sha else None)
    first = latest or run("in_progress", None)
    got = judge_runs(s, first, latest, [], deployed, the_job)
    old_status, old_sig = old_verdict(latest, deployed, has_sha, the_job)
    want_status, want_sig = changed(latest, deployed, has_sha, old_status, old_sig)
    assert {x.name: x.status for x in got.signals} == want_sig
    assert got.status is want_status
    # where nothing was missing and nothing changed, the finding is the old one
    unchanged = not (has_sha and deployed is None) and (latest is None or latest.conclusion)
    if unchanged:
        assert got.status is old_status
