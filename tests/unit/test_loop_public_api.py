"""The loop's state machine through the public API: ``await rootloop.investigate`` on
``rootloop.testing``'s static world, scripted reasoner and recording executor.

These run inside pytest-asyncio's event loop, so each one also shows that the loop
runs in a caller's loop: nothing in rootloop below the CLI starts one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import rootloop
from rootloop.approvals import decide
from rootloop.context import ContextStore
from rootloop.models import Diagnosis, Outcome, Status
from rootloop.models.actions import ActionResult, RunMigration, SetEnvVar
from rootloop.reasoning.base import Proposal
from rootloop.testing import (
    Killed,
    RecordingExecutor,
    RecordingPublisher,
    ScriptedReasoner,
    StaticWorld,
    actions_land_on_static_checks,
    killed_at,
    write_map,
)


@pytest.fixture(autouse=True)
def _static_checks_are_targets():
    with actions_land_on_static_checks():
        yield


def env(value: str = "20") -> SetEnvVar:
    return SetEnvVar(target="db", cluster="lab", service="db", name="POOL", value=value)


async def investigate(path: Path, reasoner, executor, **kw) -> rootloop.Investigation:
    kw.setdefault("publisher", RecordingPublisher())
    return await rootloop.investigate(
        path, reasoner=reasoner, executor=executor, memory=False, state_dir=path.parent / "s", **kw
    )


async def test_a_fix_runs_every_phase_in_order_and_ends_healthy(tmp_path: Path) -> None:
    world = StaticWorld().set("db", Status.CRITICAL, "pool exhausted")
    executor = RecordingExecutor({"set-env": lambda _a: world.heal("db")})
    events: list[rootloop.Event] = []
    result = await investigate(
        write_map(tmp_path, world),
        ScriptedReasoner({"db": env()}),
        executor,
        on_event=events.append,
    )
    assert result.status == "healthy" and result.fixed
    assert result.outcomes == (Outcome.FIXED,) and result.iterations == 1
    assert executor.applied == [env()]
    phases = [e.data["phase"] for e in events if e.kind == "phase" and e.data["state"] == "start"]
    assert phases == ["sweep", "reason", "gate", "act", "verify", "test", "pr"]
    assert result.context_path.is_file()
    assert ContextStore(tmp_path / "s").load(result.run_id).status == "healthy"
    assert result.pr == f"pr://{result.run_id}"


async def test_no_action_proposed_escalates_and_changes_nothing(tmp_path: Path) -> None:
    world = StaticWorld().set("db", Status.CRITICAL, "errors")
    executor = RecordingExecutor()
    result = await investigate(write_map(tmp_path, world), ScriptedReasoner(), executor)
    assert result.status == "escalated" and "no action for db" in result.reason
    assert executor.applied == [] and result.outcomes == ()


async def test_production_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    world = StaticWorld().set("db", Status.CRITICAL, "errors")
    executor = RecordingExecutor({"set-env": lambda _a: world.heal("db")})
    path = write_map(tmp_path, world, extra="environment: production")
    result = await investigate(path, ScriptedReasoner({"db": env()}), executor)
    assert result.status == "refused" and result.outcomes == (Outcome.REFUSED,)
    assert executor.applied == []


async def test_a_schema_change_pauses_for_approval_and_resumes_by_run_id(tmp_path: Path) -> None:
    world = StaticWorld().set("db", Status.CRITICAL, "missing column")
    migration = RunMigration(target="db", name="add_c", sql="ALTER TABLE t ADD COLUMN c int")
    executor = RecordingExecutor({"run-migration": lambda _a: world.heal("db")})
    reasoner = ScriptedReasoner({"db": migration})
    path = write_map(tmp_path, world)

    paused = await investigate(path, reasoner, executor)
    assert paused.status == "paused" and paused.gate == "schema"
    assert executor.applied == []  # nothing runs before a human says yes

    again = await investigate(path, reasoner, executor, run_id=paused.run_id)
    assert again.status == "paused" and executor.applied == []  # not approved: still waiting

    decide(
        ContextStore(tmp_path / "s"), paused.run_id, "schema", "approved", who="alice", via="test"
    )
    publisher = RecordingPublisher()
    done = await investigate(path, reasoner, executor, run_id=paused.run_id, publisher=publisher)
    assert done.run_id == paused.run_id and done.status == "healthy"
    assert executor.applied == [migration]
    # the resumed process swept only to verify: its report draws that sweep, not "unchecked"
    assert publisher.checked[-1] == set(rootloop.load_map(path).nodes)


async def test_the_iteration_budget_ends_the_run(tmp_path: Path) -> None:
    world = StaticWorld().set("db", Status.CRITICAL, "errors")
    diagnosis = Diagnosis(root_cause="db", category="x", summary="db: errors", confidence=0.8)
    # a different value each time, so neither the repeat gate nor "no progress" stops it
    script = [Proposal(diagnosis=diagnosis, action=env(str(n))) for n in range(1, 10)]
    executor = RecordingExecutor()  # applies, helps nothing
    path = write_map(
        tmp_path,
        world,
        policy={"max_iterations": 2, "no_progress_limit": 5, "verify_timeout": 0.5},
    )
    result = await investigate(path, ScriptedReasoner(script=script), executor)
    assert result.status == "escalated" and "iteration budget spent" in result.reason
    assert result.iterations == 2 and len(executor.applied) == 2
    assert Outcome.FIXED not in result.outcomes


async def test_the_same_diagnosis_through_failed_fixes_is_no_progress(tmp_path: Path) -> None:
    world = StaticWorld().set("db", Status.CRITICAL, "errors")
    diagnosis = Diagnosis(root_cause="db", category="x", summary="db: errors", confidence=0.8)
    script = [Proposal(diagnosis=diagnosis, action=env(str(n))) for n in range(1, 10)]
    # the loop counts an entry towards "no progress" only when it recorded no change
    # (``HistoryEntry.changed is None``): an executor that reports none
    executor = RecordingExecutor({"set-env": lambda _a: ActionResult(ok=True, changed="")})
    path = write_map(
        tmp_path,
        world,
        policy={"max_iterations": 9, "no_progress_limit": 2, "verify_timeout": 0.5},
    )
    result = await investigate(path, ScriptedReasoner(script=script), executor)
    assert result.status == "escalated" and "no progress" in result.reason
    assert result.iterations == 2 and len(executor.applied) == 2  # stopped before the budget
    assert result.outcomes == (Outcome.SAME_FAULT, Outcome.SAME_FAULT)


@pytest.mark.parametrize(
    "point", ["phase:gate:start", "step:set-env:apply", "step:set-env:landed", "phase:pr:start"]
)
async def test_killed_at_a_point_then_resumed_by_run_id_applies_once(
    tmp_path: Path, point: str
) -> None:
    world = StaticWorld().set("db", Status.CRITICAL, "errors")
    executor = RecordingExecutor({"set-env": lambda _a: world.heal("db")})
    reasoner = ScriptedReasoner({"db": env()})
    path = write_map(tmp_path, world)
    with killed_at(point) as hook, pytest.raises(Killed):
        await investigate(path, reasoner, executor)
    assert hook.fired
    (stored,) = ContextStore(tmp_path / "s").list()
    publisher = RecordingPublisher()
    result = await investigate(path, reasoner, executor, run_id=stored.run_id, publisher=publisher)
    assert result.status == "healthy" and result.outcomes[-1] is Outcome.FIXED
    assert executor.applied == [env()]  # once, whatever the kill interrupted
    assert publisher.published[-1][0] == "healthy"
    # whatever the resumed process skipped, its report has every node of the map checked
    assert publisher.checked[-1] == set(rootloop.load_map(path).nodes)


async def test_a_second_run_on_the_same_service_gets_lease_held(tmp_path: Path) -> None:
    from rootloop.lease import Lease

    world = StaticWorld().set("db", Status.CRITICAL, "errors")
    path = write_map(tmp_path, world)
    other = Lease(tmp_path / "s", "svc", "staging", "someone-else")
    other.acquire()
    executor = RecordingExecutor()
    try:
        with pytest.raises(rootloop.LeaseHeld):
            await investigate(path, ScriptedReasoner({"db": env()}), executor)
    finally:
        other.release()
    assert executor.applied == [] and ContextStore(tmp_path / "s").list() == []


async def test_sweep_and_load_map_are_public(tmp_path: Path) -> None:
    world = StaticWorld().set("db", Status.DEGRADED, "slow", latency_ms=900)
    topo = rootloop.load_map(write_map(tmp_path, world))
    seen: list[rootloop.Finding] = []
    findings = await rootloop.sweep(topo, on_finding=seen.append)
    assert {f.node: f.status for f in findings} == {
        "svc/compute": Status.OK,
        "db": Status.DEGRADED,
        "cache": Status.OK,
    }
    assert len(seen) == 3
    only = await rootloop.sweep(topo, nodes=["db"])
    assert [f.node for f in only] == ["db"] and only[0].value("latency_ms") == 900
    with pytest.raises(rootloop.UserError, match="no such node"):
        await rootloop.sweep(topo, nodes=["nope"])


def test_a_bad_map_is_a_topology_error(tmp_path: Path) -> None:
    bad = tmp_path / "rootloop.yaml"
    bad.write_text("service: x\nself: 3\n", encoding="utf-8")
    with pytest.raises(rootloop.TopologyError):
        rootloop.load_map(bad)


async def test_with_a_repository_the_real_publisher_opens_a_local_pr(tmp_path: Path) -> None:
    """The PR step runs in the caller's loop too (no event loop on a thread any more)."""
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README.md").write_text("service\n", encoding="utf-8")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    subprocess.run([*git, "remote", "add", "origin", str(origin)], check=True)
    subprocess.run([*git, "push", "-q", "origin", "main"], check=True)
    world = StaticWorld().set("db", Status.CRITICAL, "pool exhausted")
    executor = RecordingExecutor({"set-env": lambda _a: world.heal("db")})
    maps = tmp_path / "map"
    maps.mkdir()
    events: list[rootloop.Event] = []
    result = await rootloop.investigate(
        write_map(maps, world, repo=repo),
        reasoner=ScriptedReasoner({"db": env()}),
        executor=executor,
        memory=False,
        state_dir=tmp_path / "state",
        on_event=events.append,
    )
    notes = [e.message for e in events if e.kind == "note"]
    assert result.status == "healthy" and notes == []
    assert result.pr and result.branch and result.report and result.report.is_file()
    pushed = ["git", "-C", str(origin), "log", "--format=%B", result.branch]
    log = subprocess.run(pushed, capture_output=True, text=True, check=True).stdout
    # the record changes no code: its push must start no CI, and so no deploy of the branch
    # after the run verified what runs
    assert f"Incident record {result.run_id} [skip ci]" in log
    assert "Rootloop-Step: publish healthy" in log
