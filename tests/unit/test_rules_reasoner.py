from pathlib import Path

import rootloop
from rootloop import topology
from rootloop.context import DebugContext, HistoryEntry
from rootloop.models import Finding, Outcome, Signal, Status, Suspect
from rootloop.reasoning.base import ReasoningInput
from rootloop.reasoning.rules import RulesReasoner
from rootloop.skills import registry

registry.register("test-sleep", "tests.unit.skills_for_tests:SleepSkill")

MAP = """\
service: payments-api
self:
  compute: {skill: test-sleep}
upstream:
  - {name: api-gateway, type: http, skill: test-sleep}
downstream:
  - {name: postgresql, type: db, skill: test-sleep}
  - {name: redis, type: cache, skill: test-sleep}
  - {name: lambda-worker, type: compute, skill: test-sleep}
runbooks: runbooks/
"""
RUNBOOK = """\
service: payments-api
ladders:
  oom:
    - {kind: set-task-resources, cluster: lab, service: payments-api, memory: "{memory_x2}"}
    - {kind: apply-patch, title: "reduce batch size", edits: [{path: a.py, search: x, replace: y}]}
"""


def setup(tmp_path: Path) -> topology.Topology:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "payments-api.yaml").write_text(RUNBOOK)
    (tmp_path / "m.yaml").write_text(MAP)
    return rootloop.load_map(tmp_path / "m.yaml", env={})


def f(node: str, skill: str, status: Status, summary: str = "", **kw) -> Finding:
    return Finding(node=node, skill=skill, status=status, summary=summary or status.value, **kw)


def ok(*nodes: str) -> list[Finding]:
    return [f(n, "http-health", Status.OK) for n in nodes]


def propose(topo, findings, ctx=None):
    ctx = ctx or DebugContext(service="payments-api")
    return RulesReasoner().propose_sync(
        ReasoningInput(topology=topo, findings=findings, context=ctx)
    )


def test_connections_held_by_the_worker_blame_the_worker_two_hops_away(tmp_path):
    topo = setup(tmp_path)
    pg = f(
        "postgresql",
        "postgres",
        Status.CRITICAL,
        "connections at 100%",
        signals=[Signal(name="connections_used_ratio", value=1.0, status=Status.CRITICAL)],
        suspects=[Suspect(node="lambda-worker", reason="holds 90%", weight=0.9)],
    )
    api = f("payments-api/compute", "http-health", Status.CRITICAL, "HTTP 500")
    p = propose(topo, [pg, api, *ok("api-gateway", "redis", "lambda-worker")])
    assert p.diagnosis.root_cause == "lambda-worker"
    assert p.diagnosis.category == "connection-exhaustion"
    assert p.diagnosis.path == ["payments-api", "lambda-worker"]


def test_a_causal_signature_beats_a_victims_symptom(tmp_path):
    topo = setup(tmp_path)
    redis = f(
        "redis",
        "redis",
        Status.CRITICAL,
        "memory full under noeviction",
        signals=[
            Signal(name="maxmemory_policy", value="noeviction"),
            Signal(name="maxmemory", value=4_000_000),
            Signal(name="used_memory", value=3_990_000),
            Signal(name="used_memory_ratio", value=0.9975, status=Status.CRITICAL),
        ],
    )
    gw = f("api-gateway", "http-health", Status.CRITICAL, "HTTP 502")
    p = propose(topo, [redis, gw, *ok("postgresql", "lambda-worker")])
    assert (p.diagnosis.root_cause, p.diagnosis.category) == ("redis", "cache-full")
    assert p.action is not None and p.action.kind == "set-redis-policy"


def test_oom_climbs_the_ladder_and_skips_the_rung_that_did_not_help(tmp_path):
    topo = setup(tmp_path)
    ecs = f(
        "payments-api/compute",
        "aws-ecs",
        Status.CRITICAL,
        "OOM-killed (exit 137)",
        signals=[Signal(name="oom_kills", value=3), Signal(name="task_memory", value=256)],
    )
    first = propose(topo, [ecs])
    assert first.action is not None and first.action.memory == 512
    assert first.rung == "payments-api#oom[0]"
    # the memory rung did not help (at any memory): the next proposal is the code rung
    ecs2 = ecs.model_copy(
        update={
            "signals": [Signal(name="oom_kills", value=2), Signal(name="task_memory", value=512)]
        }
    )
    tried = HistoryEntry(
        iteration=1,
        diagnosis="OOM",
        action=first.action.describe(),
        result="fail - still OOMKilled",
        outcome=Outcome.SAME_FAULT,
        diagnosis_detail=first.diagnosis,
        action_detail=first.action,
        rung=first.rung,
        action_fingerprint=first.action.fingerprint(),
        changed="512",
    )
    second = propose(topo, [ecs2], DebugContext(service="payments-api", history=[tried]))
    assert second.action is not None and second.action.kind == "apply-patch"
    third_ctx = DebugContext(
        service="payments-api",
        history=[
            tried,
            tried.model_copy(
                update={
                    "rung": second.rung,
                    "action_detail": second.action,
                    "action_fingerprint": second.action.fingerprint(),
                }
            ),
        ],
    )
    third = propose(topo, [ecs2], third_ctx)
    assert third.action is None and "exhausted" in (third.escalate_reason or "")


def test_nothing_known_escalates_and_all_ok_is_healthy(tmp_path):
    topo = setup(tmp_path)
    weird = f("lambda-worker", "test-sleep", Status.DEGRADED, "something odd")
    p = propose(topo, [weird, *ok("api-gateway", "redis", "postgresql")])
    assert p.action is None and p.diagnosis.category == "unknown"
    assert p.diagnosis.root_cause == "lambda-worker"
    healthy = propose(topo, ok("api-gateway", "redis", "postgresql", "lambda-worker"))
    assert healthy.diagnosis.category == "healthy"
