"""The kill matrix on the real loop over fakes: killed at every point, resumed, same end.

An uninterrupted run of each scenario lists every kill point it passes (each phase
boundary, each executor step before and after its side effect, the PR). Then, for
each point, a fresh world runs the same scenario, is killed there (``Killed``, a
``BaseException``: no handler in the loop runs, as with kill -9), and a NEW loop
resumes from what was persisted. The resumed run must end exactly like the
uninterrupted one: the same status and outcomes, every side effect once, the last
ending published, and no fix recorded as failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.fakes import (
    FakeExecutor,
    Harness,
    Killed,
    ScriptedReasoner,
    World,
    kill_points,
    make_topology,
)

from rootloop.actions.gates import approval_key
from rootloop.actions.types import (
    ApplyPatch,
    BaseAction,
    FileEdit,
    RevertCommit,
    RunMigration,
    SetEnvVar,
    SetRedisPolicy,
    SetTaskResources,
)
from rootloop.context import ContextStore, DebugContext
from rootloop.models import Outcome, Status

# the loop's own tests, on the fake world: see tests/conftest.py
pytestmark = pytest.mark.usefixtures("fake_world_hosts_actions")

ENV = SetEnvVar(target="db", cluster="lab", service="db", name="POOL", value="20")
INFRA = SetTaskResources(target="db", cluster="lab", service="db", memory=2048)
CODE = ApplyPatch(target="svc", title="fix", edits=(FileEdit(path="a", search="x", replace="y"),))
REVERT = RevertCommit(target="svc", commit="abcdef1234567")
MIGRATION = RunMigration(target="db", name="add_col", sql="ALTER TABLE t ADD COLUMN c int")
CACHE = SetRedisPolicy(target="cache", policy="allkeys-lru")


@dataclass
class Scenario:
    """A world, what fixes it, and how a human takes part (an approval)."""

    name: str
    build: Callable[[], tuple[World, dict[str, BaseAction], dict]]
    approve: bool = False


def one_fix(action: BaseAction) -> Callable[[], tuple[World, dict, dict]]:
    def build() -> tuple[World, dict, dict]:
        world = World().set("db", Status.CRITICAL, "errors")
        world.set("svc/compute", Status.DEGRADED, "HTTP 500")

        def fix(_a: BaseAction) -> None:
            world.heal("db")
            world.heal("svc/compute")

        return world, {"db": action}, {action.kind: fix}

    return build


def two_steps() -> tuple[World, dict, dict]:
    """The seed's shape: the first fix exposes a new fault, the second clears it."""
    world = World().set("db", Status.CRITICAL, "errors")

    def first(_a: BaseAction) -> None:
        world.heal("db")
        world.set("cache", Status.CRITICAL, "evictions")

    return (
        world,
        {"db": ENV, "cache": CACHE},
        {"set-env": first, "set-redis-policy": lambda _a: world.heal("cache")},
    )


def nothing_to_do() -> tuple[World, dict, dict]:
    return World().set("db", Status.CRITICAL, "errors"), {}, {}


SCENARIOS = [
    Scenario("env", one_fix(ENV)),
    Scenario("infra", one_fix(INFRA)),
    Scenario("code", one_fix(CODE)),
    Scenario("revert", one_fix(REVERT)),
    Scenario("migration", one_fix(MIGRATION), approve=True),
    Scenario("new-fault-then-fix", two_steps),
    Scenario("escalate-and-publish", nothing_to_do),
]


class Case:
    def __init__(self, tmp_path: Path, scenario: Scenario) -> None:
        world, actions, effects = scenario.build()
        self.scenario = scenario
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.h = Harness(
            # a failing verify waits out its timeout: short here, the verdict does not
            # depend on it (the fakes settle at once, so every sweep of one verify judges
            # the same world; a timeout that ends after one pass returns that pass)
            topology=make_topology(tmp_path, world, policy={"verify_timeout": 0.1}),
            store=ContextStore(tmp_path / "state"),
            reasoner=ScriptedReasoner(actions),
            executor=FakeExecutor(effects),
        )

    def drive(self, ctx: DebugContext | None = None) -> DebugContext:
        """Run until the end, granting the approval a paused run asks for (the human)."""
        ctx = asyncio.run(self.h.run(ctx) if ctx is not None else self.h.run())
        if self.scenario.approve and ctx.status == "paused" and ctx.pending_gate:
            entry = ctx.current
            assert entry is not None and entry.action_detail is not None
            ctx.approvals.append(approval_key(ctx.pending_gate.gate, entry.action_detail))
            ctx.status = "running"  # what 'rootloop approve' then 'resume' do
            self.h.store.save(ctx)
            ctx = asyncio.run(self.h.resume(ctx.run_id))
        return ctx

    def resume_after_kill(self) -> DebugContext:
        runs = self.h.store.list()
        assert len(runs) == 1
        ctx = self.h.store.load(runs[0].run_id)
        if self.scenario.approve and ctx.status == "paused" and ctx.pending_gate:
            return self.drive(ctx)
        ctx = asyncio.run(self.h.resume(ctx.run_id))
        if self.scenario.approve and ctx.status == "paused" and ctx.pending_gate:
            return self.drive(ctx)
        return ctx


def summary(case: Case, ctx: DebugContext) -> dict:
    """The end state. An entry killed between reasoning and the gate ran nothing and is
    kept as ``interrupted`` (the resumed run reasons afresh): it is left out here, and
    the test checks it ran nothing."""
    ran = [e for e in ctx.history if e.outcome is not Outcome.INTERRUPTED]
    return {
        "status": ctx.status,
        "outcomes": [e.outcome for e in ran],
        "actions": [e.action_fingerprint for e in ran],
        "side_effects": [a.fingerprint() for a in case.h.executor.applied],
    }


def reference(tmp_path: Path, scenario: Scenario, monkeypatch) -> tuple[dict, list[str]]:
    hook = kill_points(monkeypatch)
    case = Case(tmp_path / "reference", scenario)
    ctx = case.drive()
    monkeypatch.setattr("rootloop.killpoints.hook", None)
    return summary(case, ctx), list(hook.seen)


def occurrences(points: list[str]) -> list[tuple[str, int]]:
    out, seen = [], {}
    for p in points:
        seen[p] = seen.get(p, 0) + 1
        out.append((p, seen[p]))
    return out


# Every scenario's kill points are split into SHARDS interleaved slices (point i goes
# to shard i % SHARDS), one test each: together they kill at every point, as one test
# would, but the parallel workers share the longest scenario instead of one waiting on it.
SHARDS = 3


@pytest.mark.parametrize("shard", range(SHARDS), ids=lambda k: f"{k + 1}of{SHARDS}")
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_killed_anywhere_then_resumed_ends_like_an_uninterrupted_run(
    scenario: Scenario, shard: int, tmp_path: Path, monkeypatch
) -> None:
    want, points = reference(tmp_path, scenario, monkeypatch)
    assert want["status"] in ("healthy", "escalated")
    kinds = {p.split(":")[0] for p in points}
    assert {"phase"} <= kinds and any(p.startswith("phase:pr") for p in points)
    if scenario.name != "escalate-and-publish":
        assert any(p.endswith(":landed") for p in points)  # killed after the side effect too
    mine = [(i, p) for i, p in enumerate(occurrences(points)) if i % SHARDS == shard]
    assert mine, "this shard kills nowhere: fewer kill points than shards"
    for i, (point, nth) in mine:
        case = Case(tmp_path / f"kill-{i}", scenario)
        hook = kill_points(monkeypatch, point, nth)
        with pytest.raises(Killed):
            case.drive()
        assert hook.fired
        monkeypatch.setattr("rootloop.killpoints.hook", None)
        ctx = case.resume_after_kill()
        got = summary(case, ctx)
        assert got == want, f"killed at {point} (#{nth})"
        assert not ctx.publish_pending, f"killed at {point}: the ending was never published"
        assert case.h.publisher.published[-1][0] == ctx.status
        assert Outcome.APPLY_FAILED not in got["outcomes"]
        interrupted = [e for e in ctx.history if e.outcome is Outcome.INTERRUPTED]
        assert len(interrupted) <= 1 and all(e.changed is None for e in interrupted)


def test_every_action_kind_has_one_executor_with_its_resources() -> None:
    """One table maps each kind to apply, already-applied and the resources it touches."""
    from typing import get_args

    from rootloop.actions.dispatch import Dispatcher
    from rootloop.actions.types import (
        Action,
        ForceDeployment,
        PlacementStep,
        RedriveDlq,
        RevertFunctionConfig,
        RollbackTaskDefinition,
        ScaleService,
        SetCapacityProviderStrategy,
        SetConnectionLimit,
        SetEventSourceMapping,
        SetFunctionConcurrency,
        SetFunctionEnv,
        SetFunctionTimeout,
        SetPlacementStrategy,
        SetRoleTimeout,
        TerminateBackend,
    )

    samples = [
        ENV,
        INFRA,
        CODE,
        REVERT,
        MIGRATION,
        CACHE,
        RollbackTaskDefinition(target="db", cluster="c", service="s", task_definition="f:1"),
        ForceDeployment(target="db", cluster="c", service="s"),
        ScaleService(target="db", cluster="c", service="s", desired=2),
        TerminateBackend(target="db", pid=42),
        SetFunctionEnv(target="w", function_name="w", name="N", value="1"),
        SetEventSourceMapping(target="w", function_name="w"),
        SetConnectionLimit(target="db", scope="role", name="app", limit=-1),
        SetPlacementStrategy(
            target="db", cluster="c", service="s", strategy=(PlacementStep(type="spread"),)
        ),
        SetCapacityProviderStrategy(target="db", cluster="c", service="s", base_provider="od"),
        RevertFunctionConfig(target="w", function_name="w", version="1"),
        SetFunctionTimeout(target="w", function_name="w", timeout=10),
        SetFunctionConcurrency(target="w", function_name="w", reserved=-1),
        SetRoleTimeout(target="db", role="app", seconds=30),
        RedriveDlq(target="q"),
    ]
    every_kind = {cls.model_fields["kind"].default for cls in get_args(get_args(Action)[0])}
    assert {a.kind for a in samples} == every_kind
    for action in samples:
        executor = Dispatcher.executor_of(action)
        assert executor.resources(action), action.kind
