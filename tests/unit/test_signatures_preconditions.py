"""Each signature drives an action only when its preconditions hold in the evidence.

The cases are the ones where a plausible-looking signature would act on the wrong
thing: a Redis refusing clients at ``maxclients`` (not full), a queue whose consumer
runs while one message fails (not a consumer down), errors in a service whose
"deployed commit" is the repository's root commit (no deploy diff at all).
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import rootloop
from rootloop import topology
from rootloop.context import DebugContext
from rootloop.models import Evidence, Finding, Signal, Status, Suspect
from rootloop.models.deploys import DeployDiff
from rootloop.reasoning import categories as cat
from rootloop.reasoning.base import ReasoningInput
from rootloop.reasoning.rules import RulesReasoner, rank_suspects
from rootloop.reasoning.signatures import bad_deploy, cache_full, consumer_down, match, oom
from rootloop.skills import deploys, registry

registry.register("test-sleep", "tests.unit.skills_for_tests:SleepSkill")

MAP = """\
service: payments-api
self:
  compute: {{skill: test-sleep}}
  repo: {{path: {repo}}}
upstream:
  - {{name: api-gateway, type: http, skill: test-sleep}}
downstream:
  - {{name: redis, type: cache, skill: test-sleep}}
  - {{name: queue, type: queue, skill: test-sleep}}
  - {{name: lambda-worker, type: compute, skill: test-sleep}}
"""
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CRIT, DEG, OK = Status.CRITICAL, Status.DEGRADED, Status.OK


def topo(tmp_path: Path, repo: Path | None = None) -> topology.Topology:
    (tmp_path / "m.yaml").write_text(MAP.format(repo=repo or tmp_path / "none"))
    return rootloop.load_map(tmp_path / "m.yaml", env={})


def sig(name: str, value, status: Status = OK) -> Signal:
    return Signal(name=name, value=value, status=status)


def redis_finding(*signals: Signal, summary: str = "redis unhealthy") -> Finding:
    return Finding(node="redis", skill="redis", status=CRIT, summary=summary, signals=list(signals))


# -- cache full --------------------------------------------------------------------------


def test_cache_full_holds_with_a_limit_usage_near_it_and_noeviction(tmp_path):
    f = redis_finding(
        sig("maxmemory", 4_000_000),
        sig("used_memory", 3_990_000),
        sig("used_memory_ratio", 0.9975, CRIT),
        sig("maxmemory_policy", "noeviction"),
    )
    [hit] = cache_full(f, topo(tmp_path))
    assert hit.category == cat.CACHE_FULL
    assert "a memory limit is set" in hit.preconditions


def test_clients_refused_at_maxclients_under_the_default_policy_is_not_cache_full(tmp_path):
    f = redis_finding(
        sig("maxmemory", 0),  # Redis's default: unlimited
        sig("used_memory", 1_200_000),
        sig("maxmemory_policy", "noeviction"),  # Redis's default too
        sig("rejected_connections", 57, DEG),
        sig("clients_used_ratio", 1.0, CRIT),
        summary="10 of 10 clients connected; 57 connection(s) rejected (maxclients 10)",
    )
    assert cache_full(f, topo(tmp_path)) == []


def test_memory_near_the_limit_but_evicting_is_not_cache_full(tmp_path):
    f = redis_finding(
        sig("maxmemory", 4_000_000),
        sig("used_memory", 3_990_000),
        sig("used_memory_ratio", 0.9975, CRIT),
        sig("maxmemory_policy", "allkeys-lru"),
    )
    assert cache_full(f, topo(tmp_path)) == []


def test_a_limit_with_usage_judged_fine_is_not_cache_full(tmp_path):
    f = redis_finding(
        sig("maxmemory", 4_000_000),
        sig("used_memory", 1_000_000),
        sig("used_memory_ratio", 0.25),
        sig("maxmemory_policy", "noeviction"),
    )
    assert cache_full(f, topo(tmp_path)) == []


def test_without_a_signature_rules_escalate_with_the_cache_as_top_suspect(tmp_path):
    t = topo(tmp_path)
    refused = redis_finding(
        sig("maxmemory", 0),
        sig("maxmemory_policy", "noeviction"),
        sig("clients_used_ratio", 1.0, CRIT),
        summary="clients refused at maxclients",
    ).model_copy(update={"anomaly_started_at": T0})
    victim = Finding(
        node="payments-api/compute",
        skill="http-health",
        status=DEG,
        summary="HTTP 500 on /pay",
        anomaly_started_at=T0 + timedelta(seconds=20),
    )
    ok = [
        Finding(node=n, skill="test-sleep", status=OK, summary="ok")
        for n in ("api-gateway", "queue", "lambda-worker")
    ]
    p = RulesReasoner().propose_sync(
        ReasoningInput(
            topology=t, findings=[refused, victim, *ok], context=DebugContext(service="x")
        )
    )
    assert p.action is None and p.escalate_reason
    top = p.diagnosis.candidates[0]
    assert top.node == "redis"
    assert top.onset == T0
    assert any("clients_used_ratio" in e for e in top.evidence)
    assert top.would_try and "redis" in top.would_try


# -- queues ------------------------------------------------------------------------------


def queue(stalled: bool, dlq: Status, growing: bool) -> Finding:
    return Finding(
        node="queue",
        skill="aws-sqs",
        status=CRIT,
        summary="queue unhealthy",
        signals=[
            sig("depth", 300 if growing else 0, DEG if growing else OK),
            sig("depth_growing", growing),
            sig("consumer_stalled", stalled, CRIT if stalled else OK),
            sig("dlq_depth", 1 if dlq is not OK else 0, dlq),
            sig("messages_deleted", 0 if stalled else 40),
        ],
        suspects=[Suspect(node="lambda-worker", reason="its consumer")],
    )


def test_a_stalled_consumer_with_the_queue_backing_up_is_consumer_down(tmp_path):
    [hit] = consumer_down(queue(stalled=True, dlq=CRIT, growing=True), topo(tmp_path))
    assert (hit.component, hit.category) == ("lambda-worker", cat.CONSUMER_DOWN)


def test_messages_in_the_dlq_while_the_consumer_consumes_is_not_consumer_down(tmp_path):
    assert consumer_down(queue(stalled=False, dlq=DEG, growing=False), topo(tmp_path)) == []
    [hit] = match([queue(stalled=False, dlq=DEG, growing=False)], topo(tmp_path))
    assert hit.category == cat.MESSAGES_FAILING


def test_messages_failing_default_runbook_only_redrives_the_queue(tmp_path):
    t = topo(tmp_path)
    p = RulesReasoner().propose_sync(
        ReasoningInput(
            topology=t,
            findings=[queue(stalled=False, dlq=DEG, growing=False)],
            context=DebugContext(service="x"),
        )
    )
    assert p.diagnosis.category == cat.MESSAGES_FAILING
    assert p.action is not None and p.action.kind == "redrive-dlq"
    assert p.action.target == "queue"  # the queue's node, not the consumer


# -- oom ---------------------------------------------------------------------------------


def test_an_old_oom_kill_on_a_healthy_service_drives_nothing(tmp_path):
    f = Finding(
        node="payments-api/compute",
        skill="aws-ecs",
        status=OK,
        summary="2/2 running",
        signals=[sig("oom_kills", 1)],
    )
    assert oom(f, topo(tmp_path)) == []


# -- bad deploy --------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PATH": "/usr/bin:/bin",
        "HOME": str(repo),
    }
    out = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return out.stdout.decode().strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def history(tmp_path: Path) -> tuple[Path, str, str, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    root = commit(repo, {"app/receipts.py": "a = 1\n", "app/server.py": "b = 1\n"}, "root")
    first = commit(repo, {"app/server.py": "b = 2\n"}, "deployed first")
    bad = commit(repo, {"app/receipts.py": "a = 2\n"}, "the bad change")
    return repo, root, first, bad


STACK = 'Traceback (most recent call last):\n  File "/srv/app/receipts.py", line 9\nKeyError: x'


def deploy_findings(
    commit_: str,
    previous: str | None,
    deployed_at,
    onset,
    looked_from=T0 - timedelta(minutes=15),
    repo: Path | None = None,
) -> list[Finding]:
    """The ECS and logs findings of a deploy; with ``repo``, the ECS finding carries what
    the ECS check would collect from git (``rootloop.skills.deploys``)."""
    evidence = []
    if repo is not None and previous is not None:
        got = deploys.collect(repo, previous, commit_)
        evidence.append(got.to_evidence() if isinstance(got, DeployDiff) else got)
    ecs = Finding(
        node="payments-api/compute",
        skill="aws-ecs",
        status=DEG,
        summary="tasks running",
        signals=[
            sig("deployed_commit", commit_),
            sig("previous_commit", previous),
            sig("deployed_at", deployed_at.isoformat() if deployed_at else None),
        ],
        evidence=evidence,
    )
    logs = Finding(
        node="payments-api/compute",
        skill="cloudwatch-logs",
        status=CRIT,
        summary="KeyError in every request",
        evidence=[Evidence(kind="stack", title="KeyError", text=STACK)],
        signals=[sig("window_start", looked_from.isoformat())],
        anomaly_started_at=onset,
    )
    return [ecs, logs]


def test_a_bad_deploy_is_named_from_the_diff_against_the_previously_deployed_commit(tmp_path):
    repo, _root, first, bad = history(tmp_path)
    t = topo(tmp_path, repo)
    [hit] = bad_deploy(deploy_findings(bad, first, T0, T0 + timedelta(seconds=30), repo=repo), t)
    assert hit.category == cat.BAD_DEPLOY
    assert hit.facts["bad_commit"] == bad and hit.facts["previous_commit"] == first


def test_a_frame_in_a_file_an_earlier_deploy_changed_is_not_this_deploy(tmp_path):
    repo, _root, _first, bad = history(tmp_path)
    later = commit(repo, {"app/server.py": "b = 3\n"}, "a later, harmless deploy")
    t = topo(tmp_path, repo)
    # receipts.py changed in `bad`, deployed before; the running deploy only touched server.py
    assert (
        bad_deploy(deploy_findings(later, bad, T0, T0 + timedelta(seconds=30), repo=repo), t) == []
    )


def test_the_root_commit_without_a_previous_deploy_is_never_a_bad_deploy(tmp_path):
    repo, root, _first, _bad = history(tmp_path)
    t = topo(tmp_path, repo)
    assert (
        bad_deploy(deploy_findings(root, None, T0, T0 + timedelta(seconds=30), repo=repo), t) == []
    )


def test_errors_that_began_before_the_deploy_are_not_the_deploys(tmp_path):
    repo, _root, first, bad = history(tmp_path)
    t = topo(tmp_path, repo)
    assert (
        bad_deploy(deploy_findings(bad, first, T0, T0 - timedelta(minutes=5), repo=repo), t) == []
    )


def test_an_unknown_deploy_time_is_not_enough(tmp_path):
    repo, _root, first, bad = history(tmp_path)
    t = topo(tmp_path, repo)
    assert bad_deploy(deploy_findings(bad, first, None, T0, repo=repo), t) == []


def test_a_rollback_is_not_a_forward_deploy_diff(tmp_path):
    repo, _root, first, bad = history(tmp_path)
    t = topo(tmp_path, repo)
    # running `first` after `bad`: the previous commit is not an ancestor
    assert (
        bad_deploy(deploy_findings(first, bad, T0, T0 + timedelta(seconds=30), repo=repo), t) == []
    )


def test_match_on_healthy_findings_finds_nothing(tmp_path):
    t = topo(tmp_path)
    fs = [Finding(node="redis", skill="redis", status=OK, summary="ok", signals=[])]
    assert match(fs, t) == []
    assert rank_suspects(t, fs) == []


def test_a_deploy_older_than_the_logs_window_cannot_be_blamed(tmp_path):
    """Errors first seen at the window's start may have begun long after the deploy (bad
    input hours later): without the logs from before the deploy, it is not attributed."""
    repo, _root, first, bad = history(tmp_path)
    t = topo(tmp_path, repo)
    looked_from = T0 + timedelta(hours=3)
    found = deploy_findings(
        bad, first, T0, looked_from + timedelta(seconds=1), looked_from, repo=repo
    )
    assert bad_deploy(found, t) == []
