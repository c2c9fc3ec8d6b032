"""The github-actions skill against recorded GitHub REST responses on a loopback server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rootloop.models import Status
from rootloop.redact import Redactor
from rootloop.skills import registry
from rootloop.skills.base import CheckContext, Node
from rootloop.skills.github_actions import GitHubActionsSettings, GitHubActionsSkill
from tests.fixtures.github.server import serve

BAD = "f3a1c9e27b4d4e0f9a8b7c6d5e4f3a2b1c0d9e8f"
GOOD = "8d2f4b6a1c3e5d7f9b0a2c4e6f8a0b2c4d6e8f0a"


def node(base: str, **kw) -> Node:
    settings = GitHubActionsSettings(
        repo="acme/checkout",
        workflow="ci.yml",
        branch="main",
        api_url=base.rstrip("/"),
        token_env="RL_TEST_TOKEN",
        **kw,
    )
    return Node(
        name="checkout/ci",
        type="ci",
        skill="github-actions",
        role="self",
        component="checkout",
        service="checkout",
        timeout=10.0,
        settings=settings,
    )


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    value = "ghp_" + "A" * 36
    monkeypatch.setenv("RL_TEST_TOKEN", value)
    return value


def test_registered_under_its_name():
    assert isinstance(registry.get("github-actions"), GitHubActionsSkill)


async def test_failed_run_with_failing_step_log(token: str):
    with serve("runs_failed", "jobs_failed", "logs_zip") as gh:
        f = await GitHubActionsSkill().check(node(gh.base), CheckContext(redactor=Redactor()))
    assert f.status is Status.CRITICAL, f.summary
    assert f.value("failed_step") == "Run pytest" and f.value("failed_job") == "test"
    assert f.value("head_sha") == BAD and f.value("consecutive_failures") == 2
    assert f.value("ci_conclusion") == "failure" and f.value("run_number") == 42
    assert "run #42 failure at job 'test', step 'Run pytest'" in f.summary
    log = f.evidence[0]
    assert log.kind == "log" and "the run's logs archive" in log.title
    assert "E       assert 18.0 == 20" in log.text
    assert "##[error]Process completed with exit code 1." in log.text
    assert "2026-11-27T09:58" not in log.text  # timestamps stripped
    assert "s3cr3t-pw" not in log.text  # redacted before it leaves the skill
    assert f.evidence[1].text == "Process completed with exit code 1."
    assert f.anomaly_started_at == datetime(2026, 11, 27, 9, 40, tzinfo=UTC)
    # the token was sent, and the zip came through the 302 to the storage URL
    first = gh.calls("GET")[0]
    assert first.headers.get("Authorization") == f"token {token}"
    assert first.query == {"branch": "main", "per_page": "10"}
    assert any(c.path == "/_blob/runs/30433642/logs.zip" for c in gh.seen)


async def test_deployed_commit_passed_makes_it_degraded():
    with serve("runs_failed", "jobs_failed", "logs_zip") as gh:
        f = await GitHubActionsSkill().check(node(gh.base, deployed_sha=GOOD[:12]), CheckContext())
    assert f.status is Status.DEGRADED
    assert f.value("deployed_sha_passed") is True
    assert "the deployed commit 8d2f4b6 passed" in f.summary


async def test_falls_back_to_the_job_log_when_the_archive_is_gone():
    with serve("runs_failed", "jobs_failed", "logs_gone") as gh:
        f = await GitHubActionsSkill().check(node(gh.base), CheckContext())
    assert f.status is Status.CRITICAL
    log = f.evidence[0]
    assert "the job log" in log.title
    assert log.text.splitlines()[0] == "##[group]Run pytest -q"  # only the failing step
    assert "FAILED tests/test_app.py::test_total" in log.text
    assert "Syncing repository" not in log.text


async def test_green_run_is_ok():
    with serve("runs_green") as gh:
        f = await GitHubActionsSkill().check(node(gh.base, deployed_sha=GOOD), CheckContext())
    assert f.status is Status.OK, f.summary
    assert f.value("deployed_sha_passed") is True and f.evidence == []


async def test_bad_credentials_is_an_unknown_finding():
    with serve("bad_credentials") as gh:
        f = await GitHubActionsSkill().check(node(gh.base), CheckContext())
    assert f.status is Status.UNKNOWN
    assert "Bad credentials" in f.summary and "$RL_TEST_TOKEN" in f.summary
    assert f.value("github_status") == 401


@pytest.mark.parametrize("recording,status", [("rate_limited", 403), ("rate_limited_429", 429)])
async def test_rate_limit_is_an_unknown_finding_with_reset_time(recording: str, status: int):
    with serve(recording) as gh:
        f = await GitHubActionsSkill().check(node(gh.base), CheckContext())
        assert len(gh.seen) == 1  # no automatic retry
    assert f.status is Status.UNKNOWN
    assert "rate limit" in f.summary and "resets at 2026-11-27 09:00:00 UTC" in f.summary
    assert f.value("rate_limit_reset") == "2026-11-27T09:00:00+00:00"
    assert f.value("github_status") == status


async def test_unreachable_api_is_an_unreachable_finding():
    with serve() as gh:
        base = gh.base
    f = await GitHubActionsSkill().check(node(base), CheckContext())  # server is gone
    assert f.status is Status.UNREACHABLE and "cannot reach GitHub" in f.summary


async def test_no_token_is_named_in_the_finding(monkeypatch: pytest.MonkeyPatch):
    for var in ("RL_TEST_TOKEN", "GITHUB_TOKEN", "GH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with serve("bad_credentials") as gh:
        f = await GitHubActionsSkill().check(node(gh.base), CheckContext())
        assert "Authorization" not in gh.seen[0].headers
    assert f.status is Status.UNKNOWN and "no token was set" in f.summary
