"""prior(): the last summary, similar incidents, and every action that failed before."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.test_memory_helpers import later, lock_run, oom_diagnosis, oom_run

from rootloop.memory import Memory, MemoryConfig, failed_fingerprints


@pytest.fixture
def mem(tmp_path: Path) -> Memory:
    m = Memory(tmp_path / "memory", MemoryConfig(embeddings="off"))
    yield m
    m.close()


def test_empty_memory_gives_an_empty_prior(mem: Memory) -> None:
    prior = mem.prior("checkout", ["web"])
    assert prior.empty and prior.last_summary is None


def test_prior_has_the_last_summary_and_the_failed_action(mem: Memory) -> None:
    ctx, findings, restart = oom_run("r-first", fixed=False)
    mem.archive(ctx, findings)
    prior = mem.prior("checkout", ["web", "orders-db"], findings)
    assert prior.last_run_id == "r-first"
    assert prior.last_summary is not None and "## Tried and did not help" in prior.last_summary
    assert "force a new deployment of checkout" in prior.last_summary
    [failed] = prior.failed_actions
    key = oom_diagnosis().key
    assert (failed.run_id, failed.diagnosis_key, failed.fingerprint) == (
        "r-first",
        key,
        restart.fingerprint(),
    )
    # what the rules reasoner asks before climbing a runbook rung
    assert failed_fingerprints(prior, key) == {restart.fingerprint()}
    assert failed_fingerprints(prior, "orders-db:blocking-lock") == set()


def test_last_summary_is_the_latest_run_of_that_service(mem: Memory) -> None:
    for rid, minute in (("r-1", 0), ("r-3", 20), ("r-2", 10)):  # archived out of order
        ctx, f, _ = oom_run(rid, started=later(minute))
        mem.archive(ctx, f)
    ctx, f = lock_run("r-other", service="orders", started=later(99))
    mem.archive(ctx, f)
    prior = mem.prior("checkout", [])
    assert prior.last_run_id == "r-3" and "r-3" in prior.last_summary


def test_failed_actions_cover_the_nodes_on_the_map_and_nothing_else(mem: Memory) -> None:
    ctx, f, _ = oom_run("r-web", service="web", fixed=False)  # web is on checkout's map
    mem.archive(ctx, f)
    ctx, f, _ = oom_run("r-far", service="search", fixed=False)  # not on the map
    mem.archive(ctx, f)
    prior = mem.prior("checkout", ["web", "orders-db"])
    assert {a.run_id for a in prior.failed_actions} == {"r-web"}
    assert prior.last_summary is None  # checkout itself has no past run
    # the same failed fix twice is listed once
    ctx, f, _ = oom_run("r-web-2", service="web", fixed=False, started=later(5))
    mem.archive(ctx, f)
    prior = mem.prior("checkout", ["web"])
    assert [a.fingerprint for a in prior.failed_actions] == [
        ForceFp.of("web")
    ] and prior.failed_actions[0].run_id == "r-web-2"


class ForceFp:
    @staticmethod
    def of(service: str) -> str:
        from rootloop.actions.types import ForceDeployment

        return ForceDeployment(target=service, cluster="lower", service=service).fingerprint()


def test_similar_incidents_match_the_findings_within_budget(mem: Memory) -> None:
    ctx, f, _ = oom_run("r-old-oom", started=later(0))
    mem.archive(ctx, f)
    ctx, lock_findings = lock_run("r-lock", service="checkout", started=later(10))
    mem.archive(ctx, lock_findings)
    ctx, oom_findings, _ = oom_run("r-new-oom", started=later(20), fixed=False)
    mem.archive(ctx, oom_findings)
    prior = mem.prior("checkout", ["web", "orders-db"], oom_findings, k=2)
    assert prior.last_run_id == "r-new-oom"
    assert prior.similar[0].run_id == "r-old-oom"  # last run not repeated
    assert "r-new-oom" not in [p.run_id for p in prior.similar]
    assert prior.similar[0].category == "oom" and prior.similar[0].outcome == "healthy"
    lock_prior = mem.prior("checkout", ["orders-db"], lock_findings, k=1)
    assert [p.run_id for p in lock_prior.similar] == ["r-lock"]
    tight = mem.prior("checkout", ["web"], oom_findings, budget_tokens=100)
    assert tight.similar == []  # the last summary already spends the budget
