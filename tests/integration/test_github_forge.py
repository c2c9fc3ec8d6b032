"""The GitHub forge against recorded GitHub REST responses on a loopback server."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from rootloop.errors import ActionRefused
from rootloop.forge.base import BODY_LIMIT, Forge
from rootloop.forge.github import GitHubForge
from rootloop.platforms.github.errors import GitHubAuthError, GitHubRateLimited
from tests.fixtures.github.server import serve

BRANCH = "rootloop/checkout/20261127-101500-ab12"
MAIN_SHA = "f3a1c9e27b4d4e0f9a8b7c6d5e4f3a2b1c0d9e8f"


def forge(base: str) -> GitHubForge:
    return GitHubForge("acme/checkout", api_url=base, token="ghp_" + "B" * 36)


async def test_create_branch_commit_a_file_and_open_a_pr():
    with serve(
        "repo", "ref_main", "create_ref", "contents", "pulls_none", "pulls_create", "labels_add"
    ) as gh:
        f = forge(gh.base)
        assert isinstance(f, Forge)
        assert await f.create_branch(BRANCH, "main") == MAIN_SHA
        assert await f.read_file("app.py", BRANCH) == (
            "def price(qty, unit):\n    return qty * unit * 0.9  # discount\n"
        )
        commit = await f.put_file(
            BRANCH,
            "app.py",
            "def price(qty, unit):\n    return qty * unit\n",
            "Remove the hard-coded discount",
        )
        assert commit == "7638417db6d59f3c431d3e1f261cc637155684cd"
        pr = await f.open_or_update_pr(
            BRANCH,
            "checkout: remove hard-coded discount",
            "## Root cause\n...",
            ["rootloop", "needs-review"],
        )

    assert pr.created and pr.number == 17 and pr.branch == BRANCH and pr.base == "main"
    assert pr.url == "https://github.com/acme/checkout/pull/17"
    assert pr.labels == ["rootloop", "needs-review"]
    posts = {c.path: c.body for c in gh.calls("POST")}
    assert posts["/repos/acme/checkout/git/refs"] == {
        "ref": f"refs/heads/{BRANCH}",
        "sha": MAIN_SHA,
    }
    assert posts["/repos/acme/checkout/pulls"] == {
        "title": "checkout: remove hard-coded discount",
        "head": BRANCH,
        "base": "main",
        "body": "## Root cause\n...",
    }
    assert posts["/repos/acme/checkout/issues/17/labels"] == {
        "labels": ["rootloop", "needs-review"]
    }
    put = gh.calls("PUT")[0].body
    assert put["branch"] == BRANCH and put["sha"] == "3d21ec53a331a6f037a91c368710b99387d012c1"
    assert base64.b64decode(put["content"]).decode().endswith("return qty * unit\n")
    assert gh.calls("PATCH") == []


async def test_update_an_existing_pr_and_trim_its_body():
    body = "## History\n" + "| 1 | x | y |\n" * 6000
    assert len(body) > BODY_LIMIT
    with serve("repo", "pulls_existing", "pulls_update") as gh:
        pr = await forge(gh.base).open_or_update_pr(
            BRANCH, "checkout: remove hard-coded discount (verified)", body
        )
    assert not pr.created and pr.number == 17 and pr.body_truncated
    assert pr.title == "checkout: remove hard-coded discount (verified)"
    assert gh.calls("POST") == []  # no second PR
    sent = gh.calls("PATCH")[0]
    assert sent.path == "/repos/acme/checkout/pulls/17"
    assert len(sent.body["body"]) <= BODY_LIMIT and "Trimmed by rootloop" in sent.body["body"]


async def test_existing_branch_is_reused_on_resume():
    with serve("repo", "ref_main", "create_ref_exists") as gh:
        sha = await forge(gh.base).create_branch(BRANCH, "main")
    assert sha == "c0ffee0000000000000000000000000000000001"


async def test_ci_runs_of_the_run_branch():
    with serve("runs_for_branch") as gh:
        runs = await forge(gh.base).ci_runs(branch=BRANCH)
    assert [(r.id, r.passed, r.branch) for r in runs] == [("30433777", True, BRANCH)]


async def test_refuses_the_default_branch_before_any_write():
    with serve("repo", "ref_main", "create_ref") as gh:
        f = forge(gh.base)
        for call in (
            f.create_branch("main", "main"),
            f.put_file("main", "a", "b", "c"),
            f.open_or_update_pr("master", "t", "b"),
            f.push("release/1.0"),
        ):
            with pytest.raises(ActionRefused) as err:
                await call
            assert err.value.gate == "default-branch"
    assert [c for c in gh.seen if c.method != "GET"] == []


async def test_bad_credentials_is_a_typed_error():
    with serve("bad_credentials") as gh, pytest.raises(GitHubAuthError) as err:
        await forge(gh.base).get_pr(BRANCH)
    assert err.value.status == 401
    assert "Bad credentials" in str(err.value) and "$GITHUB_TOKEN" in err.value.hint


async def test_missing_scope_names_the_permission():
    with serve("repo", "ref_main", "missing_scope") as gh, pytest.raises(GitHubAuthError) as err:
        await forge(gh.base).create_branch(BRANCH, "main")
    assert err.value.status == 403 and "contents=write" in err.value.hint


async def test_rate_limit_is_a_typed_error_with_reset_time():
    with serve("rate_limited") as gh:
        with pytest.raises(GitHubRateLimited) as err:
            await forge(gh.base).open_or_update_pr(BRANCH, "t", "b")
        assert len(gh.seen) == 1
    assert err.value.reset_at == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert "resets at 2026-11-27 09:00:00 UTC" in str(err.value)
