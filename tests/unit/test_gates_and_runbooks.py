from pathlib import Path

import pytest

import rootloop
from rootloop import topology
from rootloop.actions.gates import Gatekeeper, approval_key
from rootloop.actions.types import (
    ApplyPatch,
    FileEdit,
    RunMigration,
    SetRedisPolicy,
    SetTaskResources,
)
from rootloop.context import DebugContext, HistoryEntry
from rootloop.errors import UserError
from rootloop.models import Diagnosis, FailedAction, Outcome, PriorContext
from rootloop.reasoning import runbooks

MAP = """\
service: payments-api
environment: {env}
self:
  compute: {{skill: aws-ecs, cluster: lab, service: payments-api, region: us-east-1}}
downstream:
  - {{name: postgresql, type: db, skill: postgres, dsn: "postgresql://127.0.0.1:1/x"}}
  - {{name: redis, type: cache, skill: redis, url: "redis://127.0.0.1:1/0"}}
  - {{name: ledger-prod, type: cache, skill: redis, url: "redis://127.0.0.1:2/0"}}
  - {{name: cache2, type: cache, skill: redis, url: "redis://127.0.0.1:3/0", production: true}}
policy: {{max_iterations: 3}}
"""
DIAG = Diagnosis(root_cause="payments-api", category="oom", summary="OOM", confidence=0.9)
MEM = SetTaskResources(target="payments-api", cluster="lab", service="payments-api", memory=512)


def topo(tmp_path: Path, env: str = "lower") -> topology.Topology:
    p = tmp_path / "m.yaml"
    p.write_text(MAP.format(env=env))
    return rootloop.load_map(p, env={})


def entry(
    action,
    result: str,
    outcome: Outcome,
    diagnosis: Diagnosis = DIAG,
    changed: str | None = "done",
):
    return HistoryEntry(
        iteration=1,
        diagnosis=diagnosis.summary,
        action=action.describe(),
        result=result,
        outcome=outcome,
        diagnosis_detail=diagnosis,
        action_detail=action,
        action_fingerprint=action.fingerprint(),
        changed=changed,
    )


def test_production_environment_refuses_everything(tmp_path):
    d = Gatekeeper(topo(tmp_path, "production")).check(MEM, DebugContext(service="p"))
    assert (d.decision, d.gate) == ("refuse", "production")


@pytest.mark.parametrize("target", ["ledger-prod", "cache2"])
def test_production_by_name_or_flag_refuses(tmp_path, target):
    action = SetRedisPolicy(target=target, policy="allkeys-lru")
    d = Gatekeeper(topo(tmp_path)).check(action, DebugContext(service="p"))
    assert (d.decision, d.gate) == ("refuse", "production")
    ok = Gatekeeper(topo(tmp_path)).check(
        action.model_copy(update={"target": "redis"}), DebugContext(service="p")
    )
    assert ok.allowed


def test_schema_changes_wait_for_an_approval_of_that_exact_action(tmp_path):
    gk, ctx = Gatekeeper(topo(tmp_path)), DebugContext(service="p")
    migration = RunMigration(target="postgresql", name="add", sql="ALTER TABLE t ADD COLUMN c int")
    d = gk.check(migration, ctx)
    assert (d.decision, d.gate) == ("approval", "schema")
    assert f"rootloop approve {ctx.run_id} --gate schema" in d.reason
    ctx.approvals.append(approval_key("schema", migration))
    assert gk.check(migration, ctx).allowed
    other = migration.model_copy(update={"sql": "DROP TABLE t"})
    assert gk.check(other, ctx).decision == "approval"


def test_a_patch_touching_migrations_is_a_schema_change(tmp_path):
    patch = ApplyPatch(
        target="payments-api",
        title="t",
        edits=(FileEdit(path="migrations/0002.sql", search="", replace="select 1"),),
    )
    assert Gatekeeper(topo(tmp_path)).check(patch, DebugContext(service="p")).gate == "schema"
    code = ApplyPatch(
        target="payments-api",
        title="t",
        edits=(FileEdit(path="app/x.py", search="a = 1", replace="a = 2"),),
    )
    assert Gatekeeper(topo(tmp_path)).check(code, DebugContext(service="p")).allowed


def test_an_action_that_did_not_help_is_never_repeated_for_that_diagnosis(tmp_path):
    gk = Gatekeeper(topo(tmp_path))
    ctx = DebugContext(service="p", history=[entry(MEM, "still OOMKilled", Outcome.SAME_FAULT)])
    d = gk.check(MEM, ctx, DIAG.key)
    assert (d.decision, d.gate) == ("refuse", "repeat")
    other = Diagnosis(root_cause="payments-api", category="bad-deploy", summary="x", confidence=0.5)
    assert gk.check(MEM, ctx, other.key).allowed  # another diagnosis may try it


def test_a_fix_that_exposed_a_new_error_helped_and_is_not_blocked(tmp_path):
    ctx = DebugContext(
        service="p", history=[entry(MEM, "new error: pool exhausted", Outcome.NEW_FAULT)]
    )
    assert Gatekeeper(topo(tmp_path)).check(MEM, ctx, DIAG.key).allowed


def test_an_action_that_failed_to_apply_is_refused_whatever_the_diagnosis(tmp_path):
    ctx = DebugContext(
        service="p", history=[entry(MEM, "CI red", Outcome.APPLY_FAILED, changed=None)]
    )
    assert Gatekeeper(topo(tmp_path)).check(MEM, ctx, "x:y").gate == "repeat"


def test_memory_of_a_failed_fix_refuses_it_in_a_new_run(tmp_path):
    prior = PriorContext(
        failed_actions=[
            FailedAction(
                run_id="old", diagnosis_key=DIAG.key, fingerprint=MEM.fingerprint(), description=""
            )
        ]
    )
    d = Gatekeeper(topo(tmp_path)).check(MEM, DebugContext(service="p"), DIAG.key, prior)
    assert d.gate == "repeat" and "old" in d.reason


def test_budget(tmp_path):
    ctx = DebugContext(service="p", iteration=4)
    assert Gatekeeper(topo(tmp_path)).check(MEM, ctx).gate == "budget"


def test_runbook_placeholders_keep_types_and_missing_facts_skip_the_rung():
    books = runbooks.load(None)
    [rung] = books.rungs(
        ["svc"], "oom", {"memory_x2": 1024}, {"target": "svc", "cluster": "c", "service": "svc"}
    )
    assert rung.action is not None and rung.action.memory == 1024
    [rung] = books.rungs(["svc"], "oom", {}, {"target": "svc", "cluster": "c", "service": "s"})
    assert rung.action is None and rung.missing == ["memory_x2"]


def test_service_runbook_comes_before_the_defaults(tmp_path):
    (tmp_path / "svc.yaml").write_text(
        "service: svc\nladders:\n  cache-full:\n    - {kind: set-redis-policy, "
        "policy: volatile-lru}\n"
    )
    books = runbooks.load(tmp_path)
    [rung] = books.rungs(["redis", "svc"], "cache-full", {}, {"target": "redis"})
    assert rung.source == "svc#cache-full[0]" and rung.action.policy == "volatile-lru"
    [rung] = books.rungs(["other"], "cache-full", {}, {"target": "redis"})
    assert rung.source == "default#cache-full[0]" and rung.action.policy == "allkeys-lru"


def test_a_broken_runbook_names_the_file(tmp_path):
    (tmp_path / "svc.yaml").write_text("service: svc\nladder: {}\n")
    with pytest.raises(UserError, match=r"svc\.yaml"):
        runbooks.load(tmp_path)
    (tmp_path / "svc.yaml").write_text(
        "service: svc\nladders:\n  oom:\n    - {kind: set-task-resources, memory: lots}\n"
    )
    with pytest.raises(UserError, match=r"svc#oom\[0\].*memory"):
        runbooks.load(tmp_path).rungs(
            ["svc"], "oom", {}, {"target": "svc", "cluster": "c", "service": "svc"}
        )
