"""kill -9 on the real lab, then ``rootloop resume``: every side effect once, the fix credited.

Each case runs ``rootloop run`` as its own process with ``ROOTLOOP_KILL_AT`` naming the
point where the process SIGKILLs itself (never "after N seconds"): right after the
side effect landed in the real world and before the debug context says so. A fresh
``rootloop resume`` must find that side effect by its key, not repeat it, finish the
iteration, and end like an uninterrupted run. The fast version of this matrix, at
every point of every action kind, is ``tests/unit/test_exactly_once_kill_matrix.py``.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import psycopg
import pytest

from rootloop import load_map
from rootloop.actions.datastores import LEDGER
from rootloop.actions.dispatch import Dispatcher
from rootloop.actions.ecs import KEY_TAG
from rootloop.context import ContextStore
from rootloop.models import Outcome
from rootloop_lab import Lab
from rootloop_lab.scenarios import probe
from tests.e2e.lab_cli import only_run, rootloop, said, start

pytestmark = pytest.mark.e2e

KILLED = -signal.SIGKILL


@pytest.fixture
def lab(shared_lab: Lab) -> Lab:
    return shared_lab


def resume(run_id: str, state: Path) -> subprocess.CompletedProcess[str]:
    return rootloop("resume", run_id, "--reasoner", "rules", state=state)


def assert_credited(state: Path, run_id: str, done: subprocess.CompletedProcess[str]) -> None:
    ctx = ContextStore(state).load(run_id)
    assert ctx.status == "healthy", said(done)[-3000:]
    assert [h.outcome for h in ctx.history] == [Outcome.FIXED]  # the fix, not "failed"
    assert not ctx.publish_pending and ctx.pr


def test_restart_killed_after_its_deploy_deploys_one_tagged_revision(lab: Lab, tmp_path: Path):
    map_path = start(lab, "downstream-http-503")
    killed = rootloop(
        "run",
        "-t",
        str(map_path),
        "--reasoner",
        "rules",
        state=tmp_path,
        kill_at="step:restart:deployed",
    )
    assert killed.returncode == KILLED, said(killed)[-2000:]
    ctx = only_run(tmp_path)
    assert ctx.current is not None and ctx.current.phase == "applying"
    done = resume(ctx.run_id, tmp_path)
    assert_credited(tmp_path, ctx.run_id, done)

    topo = load_map(map_path)
    action = ContextStore(tmp_path).load(ctx.run_id).history[0].action_detail
    assert action is not None and action.kind == "restart"
    dispatcher = Dispatcher(topo, tmp_path)
    ecs = dispatcher.aws_clients(
        dispatcher.landing_node(action, ContextStore(tmp_path).load(ctx.run_id))
    ).ecs
    family = (
        ecs.describe_services(cluster=action.cluster, services=[action.service])["services"][0][
            "taskDefinition"
        ]
        .rsplit("/", 1)[-1]
        .rpartition(":")[0]
    )
    tagged = []
    for arn in ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]:
        tags = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"]).get("tags", [])
        if {"key": KEY_TAG, "value": f"{ctx.run_id}/1"} in tags:
            tagged.append(arn)
    assert len(tagged) == 1  # restarted once, across both processes
    assert probe(lab, "downstream-http-503").fixed


def test_migration_killed_after_its_commit_is_not_run_again(lab: Lab, tmp_path: Path):
    map_path = start(lab, "schema-change")
    paused = rootloop("run", "-t", str(map_path), "--reasoner", "rules", state=tmp_path)
    assert paused.returncode == 3, said(paused)[-2000:]
    ctx = only_run(tmp_path)
    killed = rootloop(
        "approve",
        ctx.run_id,
        "--gate",
        "schema",
        state=tmp_path,
        kill_at="step:run-migration:committed",
    )
    assert killed.returncode == KILLED, said(killed)[-2000:]
    done = resume(ctx.run_id, tmp_path)
    assert_credited(tmp_path, ctx.run_id, done)  # re-running the DDL would have failed
    with psycopg.connect(lab.state().pg_dsn(), autocommit=True) as conn:
        rows = conn.execute(f"SELECT key FROM {LEDGER} WHERE key LIKE %s", (f"{ctx.run_id}/%",))
        assert [r[0] for r in rows.fetchall()] == [f"{ctx.run_id}/1"]
    assert probe(lab, "schema-change").fixed


def test_killed_between_healthy_and_the_pr_resumes_into_publishing(lab: Lab, tmp_path: Path):
    map_path = start(lab, "redis-noeviction")
    killed = rootloop(
        "run",
        "-t",
        str(map_path),
        "--reasoner",
        "rules",
        state=tmp_path,
        kill_at="step:publish:push",
    )
    assert killed.returncode == KILLED, said(killed)[-2000:]
    ctx = only_run(tmp_path)
    assert ctx.status == "healthy" and ctx.publish_pending and not ctx.pr
    done = resume(ctx.run_id, tmp_path)
    assert done.returncode == 0, said(done)[-2000:]
    assert "already ended" not in said(done)
    assert_credited(tmp_path, ctx.run_id, done)
    prs = list((tmp_path / "prs").glob("*.json"))
    assert len(prs) == 1  # one PR
    # and nothing was done twice: one action in the run's history
    assert len(ContextStore(tmp_path).load(ctx.run_id).history) == 1


def test_revert_killed_before_its_push_is_pushed_built_and_deployed_on_resume(
    lab: Lab, tmp_path: Path
):
    """The issue's case: a local commit must never mean "done" — resume pushes it, waits
    for its CI run and its deploy, and credits the fix."""
    map_path = start(lab, "bad-deploy")
    killed = rootloop(
        "run",
        "-t",
        str(map_path),
        "--reasoner",
        "rules",
        state=tmp_path,
        kill_at="step:revert-commit:push",
    )
    assert killed.returncode == KILLED, said(killed)[-2000:]
    ctx = only_run(tmp_path)
    done = resume(ctx.run_id, tmp_path)
    assert_credited(tmp_path, ctx.run_id, done)
    entry = ContextStore(tmp_path).load(ctx.run_id).history[0]
    assert entry.gha == "pass" and entry.commit
    origin = next(lab.root.glob("repo/*.git"), None) or next(lab.root.rglob("*.git"))
    log = subprocess.run(
        ["git", "-C", str(origin), "log", "--format=%s", f"rootloop/payments-api/{ctx.run_id}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert sum(s.startswith("Revert") for s in log) == 1  # one revert, pushed once
    assert probe(lab, "bad-deploy").fixed
