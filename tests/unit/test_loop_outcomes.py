"""Every way an iteration and a run can end, on the real loop over in-memory fakes.

The claim under test: the outcome is data the loop decides from evidence, and a run
ends "healthy" only when an action changed something and every entry symptom cleared.
"""

from __future__ import annotations

import asyncio

import pytest
from tests.fakes import FakeExecutor, Harness, ScriptedReasoner, World, make_topology

from rootloop.actions.types import ActionResult, SetEnvVar
from rootloop.context import DebugContext, HistoryEntry
from rootloop.models import LoadTestResult, Outcome, Status

# the loop's own tests, on the fake world: see tests/conftest.py
pytestmark = pytest.mark.usefixtures("fake_world_hosts_actions")


def env(target: str, value: str = "2") -> SetEnvVar:
    return SetEnvVar(target=target, cluster="lab", service=target, name="X", value=value)


def harness(tmp_path, world: World, effects=None, actions=None, **topo) -> Harness:
    from rootloop.context import ContextStore

    return Harness(
        topology=make_topology(tmp_path, world, **topo),
        store=ContextStore(tmp_path / "state"),
        reasoner=ScriptedReasoner(actions or {"db": env("db")}),
        executor=FakeExecutor(effects or {}),
    )


def run(h: Harness, ctx: DebugContext | None = None) -> DebugContext:
    return asyncio.run(h.run(ctx))


def outcomes(ctx: DebugContext) -> list[Outcome | None]:
    return [e.outcome for e in ctx.history]


def test_a_fix_that_clears_every_entry_symptom_is_fixed_and_the_run_healthy(tmp_path):
    world = World().set("db", Status.CRITICAL, "disk full")
    world.set("svc/compute", Status.DEGRADED, "HTTP 500")

    def fix(_a):
        world.heal("db")
        world.heal("svc/compute")

    h = harness(tmp_path, world, {"set-env": fix})
    ctx = run(h)
    assert outcomes(ctx) == [Outcome.FIXED]
    assert ctx.status == "healthy"
    assert {s.node for s in ctx.entry_symptoms} == {"db", "svc/compute"}
    names = [c["name"] for c in ctx.history[0].verification["checks"]]  # type: ignore[index]
    assert sum(n.startswith("entry symptom cleared") for n in names) == 2
    assert h.publisher.published[-1][0] == "healthy"


def test_the_root_healthy_but_an_entry_symptom_still_bad_is_not_fixed(tmp_path):
    world = World().set("db", Status.CRITICAL, "disk full")
    world.set("svc/compute", Status.DEGRADED, "HTTP 500")
    h = harness(tmp_path, world, {"set-env": lambda _a: world.heal("db")})
    ctx = run(h)
    first = ctx.history[0]
    assert first.outcome is Outcome.SAME_FAULT
    assert ctx.status != "healthy"
    assert Outcome.FIXED not in outcomes(ctx)


def test_an_action_that_changed_nothing_is_a_no_op_and_is_not_repeated(tmp_path):
    world = World().set("db", Status.CRITICAL, "poison message in the DLQ")

    def same_value(a):
        return ActionResult(ok=True, changed="X 2 -> 2", no_op=True)

    h = harness(tmp_path, world, {"set-env": same_value})
    ctx = run(h)
    assert ctx.history[0].outcome is Outcome.NO_OP
    assert ctx.history[0].did_not_help
    assert ctx.status == "escalated"  # the repeat gate refuses the same action
    assert len(h.executor.applied) == 1
    assert Outcome.FIXED not in outcomes(ctx)


def test_a_no_op_after_which_the_symptoms_clear_is_a_recovery_crediting_nothing(tmp_path):
    world = World().set("db", Status.CRITICAL, "slow")

    def noop_while_it_heals(_a):
        world.heal("db")  # the world got better on its own at the same moment
        return ActionResult(ok=True, changed="X 2 -> 2", no_op=True)

    h = harness(tmp_path, world, {"set-env": noop_while_it_heals})
    ctx = run(h)
    assert outcomes(ctx) == [Outcome.RECOVERED_WITHOUT_FIX]
    assert ctx.status == "recovered"
    assert "without a fix" in ctx.status_reason


def test_an_action_that_failed_to_apply_is_never_relabelled_when_the_system_recovers(tmp_path):
    world = World().set("db", Status.CRITICAL, "errors")

    def broken(_a):
        world.heal("db")  # recovers by itself while the action fails
        return ActionResult(ok=False, changed="", details={"error": "CI failed"})

    h = harness(tmp_path, world, {"set-env": broken})
    ctx = run(h)
    assert outcomes(ctx) == [Outcome.APPLY_FAILED]
    assert ctx.status == "recovered"
    assert "CI failed" in ctx.history[0].result


def test_a_platform_exception_is_apply_failed_and_blocks_that_action(tmp_path):
    world = World().set("db", Status.CRITICAL, "errors")

    def boom(_a):
        raise RuntimeError("throttled")

    h = harness(tmp_path, world, {"set-env": boom})
    ctx = run(h)
    assert ctx.history[0].outcome is Outcome.APPLY_FAILED
    assert ctx.history[0].action_fingerprint in ctx.broken_fingerprints()
    assert ctx.status == "escalated"


def test_a_new_fault_after_the_fix_is_progress_not_a_failure_of_the_action(tmp_path):
    world = World().set("db", Status.CRITICAL, "db down")
    actions = {"db": env("db"), "cache": env("cache")}

    def first(a):
        if a.target == "db":
            world.heal("db")
            world.set("cache", Status.CRITICAL, "now the cache fails")
        else:
            world.heal("cache")

    h = harness(tmp_path, world, {"set-env": first}, actions)
    ctx = run(h)
    assert outcomes(ctx) == [Outcome.NEW_FAULT, Outcome.FIXED]
    assert not ctx.history[0].did_not_help
    assert ctx.status == "healthy"


def test_a_production_map_refuses_and_changes_nothing(tmp_path):
    world = World().set("db", Status.CRITICAL, "errors")
    h = harness(tmp_path, world, extra="environment: production")
    ctx = run(h)
    assert outcomes(ctx) == [Outcome.REFUSED]
    assert ctx.status == "refused"
    assert h.executor.applied == []


def test_a_run_killed_between_reasoning_and_the_gate_marks_the_entry_interrupted(tmp_path):
    world = World().set("db", Status.CRITICAL, "errors")
    h = harness(tmp_path, world, {"set-env": lambda _a: world.heal("db")})
    ctx = h.new_context()
    ctx.entry_symptoms = []
    ctx.iteration = 1
    ctx.history.append(HistoryEntry(iteration=1, diagnosis="db: errors", phase="diagnosed"))
    h.store.save(ctx)
    ctx = asyncio.run(h.resume(ctx.run_id))
    assert outcomes(ctx) == [Outcome.INTERRUPTED, Outcome.FIXED]
    assert not ctx.history[0].did_not_help


def test_nothing_wrong_and_nothing_to_reproduce_with_is_not_reproduced(tmp_path):
    h = harness(tmp_path, World())
    ctx = run(h)
    assert ctx.status == "not-reproduced"
    assert ctx.history == []
    assert any("no load or UI test" in line for line in ctx.reproduction)


def test_a_load_test_that_reproduces_the_complaint_escalates_instead(tmp_path):
    extra = "load_test: {url: 'http://127.0.0.1:9/pay', max_p95_ms: 100}"
    h = harness(tmp_path, World(), extra=extra)

    async def slow(_topo):
        return (
            LoadTestResult(
                url="http://127.0.0.1:9/pay",
                requests=10,
                successes=10,
                duration_s=1,
                rate=10,
                p50_ms=90,
                p95_ms=900,
                p99_ms=950,
                passed=False,
                reasons=["p95 900 ms > 100 ms"],
            ),
            None,
        )

    h.tests = slow
    ctx = run(h)
    assert ctx.status == "escalated"
    assert "p95 900 ms" in ctx.status_reason
    assert h.executor.applied == []


def test_a_passing_load_test_with_a_quiet_sweep_is_not_reproduced_listing_it(tmp_path):
    extra = "load_test: {url: 'http://127.0.0.1:9/pay'}"
    h = harness(tmp_path, World(), extra=extra)

    async def fine(_topo):
        return (
            LoadTestResult(
                url="http://127.0.0.1:9/pay",
                requests=10,
                successes=10,
                duration_s=1,
                rate=10,
                p50_ms=5,
                p95_ms=9,
                p99_ms=9,
                passed=True,
            ),
            None,
        )

    h.tests = fine
    ctx = run(h)
    assert ctx.status == "not-reproduced"
    assert any("load test" in line and "within objectives" in line for line in ctx.reproduction)


def test_tests_failing_after_a_passing_verify_is_not_fixed(tmp_path):
    world = World().set("db", Status.CRITICAL, "errors")
    extra = "load_test: {url: 'http://127.0.0.1:9/pay'}"
    h = harness(tmp_path, world, {"set-env": lambda _a: world.heal("db")}, extra=extra)

    async def failing(_topo):
        raise OSError("connection refused")

    h.tests = failing
    ctx = run(h)
    assert ctx.history[0].outcome is Outcome.INTERRUPTED  # unproven, not a failed fix
    assert not ctx.history[0].did_not_help
    assert ctx.status == "escalated" and "not claimed fixed" in ctx.status_reason


def test_escalating_with_no_action_names_ranked_suspects(tmp_path):
    world = World().set("db", Status.CRITICAL, "errors")
    h = harness(tmp_path, world, actions={})
    h.reasoner = _CandidatesReasoner()
    ctx = run(h)
    assert ctx.status == "escalated"
    assert [c.node for c in ctx.suspects] == ["db", "cache", "svc"]
    assert h.executor.applied == []


class _CandidatesReasoner(ScriptedReasoner):
    async def propose(self, inp):
        from rootloop.models import Candidate

        p = await super().propose(inp)
        p.diagnosis.candidates = [
            Candidate(node=n, score=1 / (i + 1)) for i, n in enumerate(["db", "cache", "svc", "x"])
        ]
        return p


def published_body(h: Harness, ctx: DebugContext) -> str:
    return (h.store.run_dir(ctx.run_id) / "pr.md").read_text(encoding="utf-8")


def real_publisher(h: Harness, tmp_path) -> None:
    from rootloop.publish import Publisher

    class PerRun:
        """The real publisher, in the run's own directory (known once the run starts)."""

        async def publish(self, run):
            return await Publisher(tmp_path, h.store.run_dir(run.context.run_id)).publish(run)

    h.publisher = PerRun()  # type: ignore[assignment]


def test_the_pr_says_fixed_and_verified_only_with_each_symptom_cleared(tmp_path):
    world = World().set("db", Status.CRITICAL, "disk full")

    h = harness(tmp_path, world, {"set-env": lambda _a: world.heal("db")})
    real_publisher(h, tmp_path)
    ctx = run(h)
    body = published_body(h, ctx)
    assert "fixed and verified" in body
    assert "### Entry symptoms" in body and "✅ cleared" in body


def test_the_pr_of_a_recovery_credits_no_action(tmp_path):
    world = World().set("db", Status.CRITICAL, "errors")

    def broken(_a):
        world.heal("db")
        return ActionResult(ok=False, changed="", details={"error": "push rejected"})

    h = harness(tmp_path, world, {"set-env": broken})
    real_publisher(h, tmp_path)
    ctx = run(h)
    body = published_body(h, ctx)
    assert "recovered without a fix" in body
    assert "fixed and verified" not in body
    assert "failed to apply" in body  # the iteration keeps its outcome


def test_the_pr_of_an_escalation_lists_the_ranked_suspects(tmp_path):
    world = World().set("db", Status.CRITICAL, "errors")
    h = harness(tmp_path, world, actions={})
    h.reasoner = _CandidatesReasoner()
    real_publisher(h, tmp_path)
    ctx = run(h)
    body = published_body(h, ctx)
    assert "### Ranked suspects" in body
    assert body.index("`db`") < body.index("`cache`")


def test_the_reports_of_a_run_that_found_nothing_claim_nothing(tmp_path):
    h = harness(tmp_path, World())
    real_publisher(h, tmp_path)
    ctx = run(h)
    body = published_body(h, ctx)
    html = (h.store.run_dir(ctx.run_id) / "report.html").read_text(encoding="utf-8")
    assert "not reproduced" in body and "fixed and verified" not in body
    assert "Not reproduced" in html and "Fixed and verified" not in html
    assert "What was checked to reproduce the complaint" in html


def load_result(passed: bool) -> LoadTestResult:
    return LoadTestResult(
        url="http://127.0.0.1:9/pay",
        requests=10,
        successes=10,
        duration_s=1,
        rate=10,
        p50_ms=5 if passed else 850,
        p95_ms=9 if passed else 1200,
        p99_ms=9 if passed else 1300,
        passed=passed,
        reasons=[] if passed else ["p95 1200 ms is above 800 ms"],
    )


def test_tests_that_pass_once_the_fix_settles_make_it_fixed(tmp_path):
    world = World().set("db", Status.CRITICAL, "errors")
    extra = "load_test: {url: 'http://127.0.0.1:9/pay'}"
    h = harness(
        tmp_path,
        world,
        {"set-env": lambda _a: world.heal("db")},
        extra=extra,
        policy={"verify_timeout": 600},  # generous: the second run comes well before it
    )
    runs: list[bool] = []

    async def slow_then_fine(_topo):
        runs.append(bool(runs))  # the first run fails (a backlog draining), later ones pass
        return load_result(runs[-1]), None

    h.tests = slow_then_fine
    ctx = run(h)
    assert runs == [False, True]
    assert outcomes(ctx) == [Outcome.FIXED] and ctx.status == "healthy"


def test_tests_failing_after_the_symptoms_cleared_is_a_new_fault_not_a_fix(tmp_path):
    world = World().set("db", Status.CRITICAL, "errors")
    extra = "load_test: {url: 'http://127.0.0.1:9/pay'}"
    h = harness(tmp_path, world, {"set-env": lambda _a: world.heal("db")}, extra=extra)

    async def always_slow(_topo):
        return load_result(False), None

    h.tests = always_slow
    ctx = run(h)
    first = ctx.history[0]
    assert first.outcome is Outcome.NEW_FAULT and not first.did_not_help
    assert ctx.status != "healthy"
    assert Outcome.FIXED not in outcomes(ctx)


class _SeesItTheSecondTime(ScriptedReasoner):
    """The first sweep is a snapshot that missed the cause; the second one shows it."""

    async def propose(self, inp):
        p = await super().propose(inp)
        if self.calls == 1:
            p.diagnosis.category, p.action = "unknown", None
        return p


def test_no_signature_on_one_sweep_gets_a_second_look_before_escalating(tmp_path):
    world = World().set("db", Status.CRITICAL, "locked", category="blocking-lock")
    h = harness(tmp_path, world, {"set-env": lambda _a: world.heal("db")})
    h.reasoner = _SeesItTheSecondTime({"db": env("db")})
    ctx = run(h)
    assert outcomes(ctx) == [Outcome.FIXED]
    assert any("looking once more" in e.message for e in h.kinds("progress"))
