"""Memory growth: a steady climb since the last restart is a leak; a batch's jump, an
OOM without a trend, and a climb on a healthy service are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import rootloop
from rootloop import topology
from rootloop.analysis.trend import memory_trend
from rootloop.context import DebugContext
from rootloop.models import Finding, Signal, Status
from rootloop.reasoning import categories as cat
from rootloop.reasoning.base import ReasoningInput
from rootloop.reasoning.rules import RulesReasoner
from rootloop.reasoning.signatures import match
from rootloop.reasoning.signatures_memory import memory_growth
from rootloop.skills import registry
from rootloop.skills.aws_ecs import memory_samples_spec, memory_trend_signals
from rootloop.skills.cloudwatch_metrics import MetricAssessment

registry.register("test-sleep", "tests.unit.skills_for_tests:SleepSkill")

MAP = """\
service: payments-api
self:
  compute: {skill: test-sleep}
downstream:
  - {name: notification-svc, type: http, skill: test-sleep}
"""
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CRIT, DEG, OK = Status.CRITICAL, Status.DEGRADED, Status.OK
LEAK = [20.0, 20, 21, 20, 28, 35, 43, 50, 58, 66, 73, 81, 88]
SPIKE = [20.0, 21, 20, 20, 21, 20, 20, 20, 20, 21, 20, 20, 99]


def topo(tmp_path: Path) -> topology.Topology:
    (tmp_path / "m.yaml").write_text(MAP)
    return rootloop.load_map(tmp_path / "m.yaml", env={})


def times(n: int) -> list[datetime]:
    return [T0 + timedelta(seconds=10 * i) for i in range(n)]


def ecs(values: list[float], *, oom_kills: int = 0, memory_bad: bool = True) -> Finding:
    spec = memory_samples_spec({"ClusterName": "lab", "ServiceName": "notification-svc"})
    samples = MetricAssessment(spec=spec, incident=values, incident_times=times(len(values)))
    peak = max(values)
    signals = [
        Signal(name="oom_kills", value=oom_kills, status=CRIT if oom_kills else OK),
        Signal(name="task_memory", value=128, unit="MiB"),
        Signal(name="memory_utilization", value=peak, status=DEG if memory_bad else OK),
        *memory_trend_signals([samples]),
    ]
    bad = memory_bad or oom_kills
    return Finding(
        node="notification-svc",
        skill="aws-ecs",
        status=(CRIT if oom_kills else DEG) if bad else OK,
        summary=f"memory {peak}%",
        signals=signals,
    )


def test_a_steady_climb_toward_the_limit_is_memory_growth(tmp_path):
    [hit] = memory_growth(ecs(LEAK), topo(tmp_path))
    assert hit.category == cat.MEMORY_GROWTH
    assert hit.facts["memory_x2"] == 256 and hit.facts["slope_pct_per_min"] > 0


def test_a_leak_that_already_ended_in_oom_kills_is_memory_growth_not_oom(tmp_path):
    restarted = [30.0, 45, 60, 75, 90, 15, 22, 30, 37, 45, 52]
    f = ecs(restarted, oom_kills=2)
    categories = [h.category for h in match([f], topo(tmp_path))]
    assert cat.MEMORY_GROWTH in categories and cat.OOM in categories
    p = RulesReasoner().propose_sync(
        ReasoningInput(topology=topo(tmp_path), findings=[f], context=DebugContext(service="x"))
    )
    assert p.diagnosis.category == cat.MEMORY_GROWTH
    assert p.action is None  # no default rung: restarting a leak only resets its clock


def test_a_batch_that_spikes_to_its_limit_is_not_memory_growth(tmp_path):
    f = ecs(SPIKE, oom_kills=1)
    assert memory_growth(f, topo(tmp_path)) == []
    assert [h.category for h in match([f], topo(tmp_path))] == [cat.OOM]


def test_a_climb_on_a_service_whose_memory_is_judged_fine_drives_nothing(tmp_path):
    assert memory_growth(ecs(LEAK, memory_bad=False), topo(tmp_path)) == []


def test_too_few_samples_since_the_restart_say_nothing():
    assert memory_trend(times(3), [20.0, 40, 60]) is None


def test_a_jump_carrying_most_of_the_rise_is_not_steady():
    trend = memory_trend(times(6), [20.0, 22, 24, 26, 90, 92])
    assert trend is not None and not trend.steady and trend.largest_step_share >= 0.5


def test_with_the_services_runbook_rung_the_leak_is_turned_off(tmp_path):
    from rootloop.reasoning import runbooks as rb

    book = tmp_path / "books"
    book.mkdir()
    (book / "notification-svc.yaml").write_text(
        "service: notification-svc\nladders:\n  memory-growth:\n"
        "    - {kind: set-env, cluster: c, service: notification-svc,"
        " name: RENDER_CACHE, value: 'off'}\n"
    )
    p = RulesReasoner(rb.load(book)).propose_sync(
        ReasoningInput(
            topology=topo(tmp_path), findings=[ecs(LEAK)], context=DebugContext(service="x")
        )
    )
    assert p.diagnosis.category == cat.MEMORY_GROWTH
    assert p.action is not None and p.action.kind == "set-env"


def test_right_after_a_kill_the_life_that_ended_in_it_is_judged():
    # the running task has two samples; the one before it climbed to its kill
    trend = memory_trend(times(12), [20.0, 20, 28, 36, 44, 52, 60, 68, 76, 92, 15, 22])
    assert trend is not None and trend.steady and trend.last == 92
