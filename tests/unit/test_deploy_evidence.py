"""The files a deploy changed arrive as evidence: the skill side runs git, the
bad-deploy signature only reads (reasoning does no I/O)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.unit.test_signatures_preconditions import T0, commit, deploy_findings, history, topo

import rootloop
from rootloop.models import Evidence
from rootloop.models.deploys import DeployDiff
from rootloop.reasoning.signatures import bad_deploy
from rootloop.skills import deploys


def test_a_forward_deploy_has_exactly_the_files_it_changed(tmp_path):
    repo, _root, first, bad = history(tmp_path)
    got = deploys.collect(repo, first, bad)
    assert isinstance(got, DeployDiff)
    assert got.files == ("app/receipts.py",)
    assert DeployDiff.from_evidence(got.to_evidence()) == got


def test_a_rollback_or_an_unknown_commit_has_no_diff_but_says_why(tmp_path):
    repo, _root, first, bad = history(tmp_path)
    rollback = deploys.collect(repo, bad, first)
    assert isinstance(rollback, Evidence) and "not an ancestor" in rollback.text
    unknown = deploys.collect(repo, first, "0" * 40)
    assert isinstance(unknown, Evidence) and DeployDiff.from_evidence(unknown) is None


def test_the_signature_never_runs_git_without_evidence_it_finds_nothing(tmp_path):
    repo, _root, first, bad = history(tmp_path)
    t = topo(tmp_path, repo)  # the repository is there, but no skill collected a diff
    assert bad_deploy(deploy_findings(bad, first, T0, T0 + timedelta(seconds=30)), t) == []


def test_a_diff_of_other_commits_is_not_this_deploys(tmp_path):
    repo, _root, first, bad = history(tmp_path)
    later = commit(repo, {"app/server.py": "b = 3\n"}, "later")
    t = topo(tmp_path, repo)
    found = deploy_findings(later, bad, T0, T0 + timedelta(seconds=30))
    # a stale diff (first..bad) that touched the frame's file, beside the running deploy
    found[0].evidence.append(
        DeployDiff(previous=first, commit=bad, files=("app/receipts.py",)).to_evidence()
    )
    assert bad_deploy(found, t) == []


def test_malformed_diff_evidence_is_ignored():
    title = "files changed by the deploy"
    assert DeployDiff.from_evidence(Evidence(kind="text", title=title, text="a" * 7 + "..")) is None
    assert DeployDiff.from_evidence(Evidence(kind="diff", title=title, text="x")) is None
    assert DeployDiff.from_evidence(Evidence(kind="diff", title=title, text="a..b\nf")) is None


MAP = """\
service: payments-api
self:
  compute: {{skill: aws-ecs, cluster: main}}
  repo: {{path: code}}
upstream:
  - name: gateway
    type: http
    skill: aws-ecs
    cluster: main
"""


def test_the_maps_repository_reaches_only_its_own_compute_check(tmp_path: Path):
    (tmp_path / "m.yaml").write_text(MAP.format())
    t = rootloop.load_map(tmp_path / "m.yaml", env={})
    own = t.nodes["payments-api/compute"].settings
    assert own.repo_path == str((tmp_path / "code").resolve())
    assert t.nodes["gateway"].settings.repo_path is None
