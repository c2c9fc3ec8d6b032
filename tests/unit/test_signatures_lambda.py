"""Lambda signatures: each acts when its preconditions hold and stays silent when one
does not (a slow function that was not ended, throttles below the reservation, errors
that were there before the change, a change with nothing published before it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import rootloop
from rootloop import topology
from rootloop.models import Finding, Signal, Status, Suspect
from rootloop.reasoning import categories as cat
from rootloop.reasoning.rules import rank_hits
from rootloop.reasoning.runbooks import load
from rootloop.reasoning.signatures import match
from rootloop.reasoning.signatures_lambda import (
    config_change_errors,
    function_timeout,
    reserved_concurrency_throttling,
)
from rootloop.skills import registry

registry.register("test-sleep", "tests.unit.skills_for_tests:SleepSkill")

MAP = """\
service: payments-api
self:
  compute: {skill: test-sleep}
downstream:
  - {name: lambda-worker, type: compute, skill: test-sleep}
"""
OK, DEG, CRIT = Status.OK, Status.DEGRADED, Status.CRITICAL
NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def topo(tmp_path: Path) -> topology.Topology:
    (tmp_path / "m.yaml").write_text(MAP)
    return rootloop.load_map(tmp_path / "m.yaml", env={})


def lam(status: Status = CRIT, **values: object) -> Finding:
    """A Lambda finding; ``values`` name signals, a (value, status) pair judges one."""
    signals = []
    for name, v in values.items():
        value, judged = v if isinstance(v, tuple) else (v, OK)
        signals.append(Signal(name=name, value=value, status=judged))
    return Finding(
        node="lambda-worker", skill="aws-lambda", status=status, summary="f", signals=signals
    )


# -- timeouts --------------------------------------------------------------------------


def test_invocations_ended_at_the_timeout_are_a_timeout(tmp_path):
    f = lam(errors=(12, CRIT), timeout=1, duration_max=(1000.0, CRIT), previous_version="3",
            previous_timeout=10)  # fmt: skip
    (hit,) = function_timeout(f, topo(tmp_path))
    assert hit.category == cat.FUNCTION_TIMEOUT and hit.component == "lambda-worker"
    assert hit.facts["timeout_x2"] == 2 and hit.facts["previous_version"] == "3"


def test_a_slow_function_that_was_not_ended_is_not_a_timeout(tmp_path):
    f = lam(errors=(12, CRIT), timeout=10, duration_max=(9000.0, DEG))  # 90 % of it
    assert function_timeout(f, topo(tmp_path)) == []


def test_durations_at_the_timeout_without_errors_are_not_a_timeout(tmp_path):
    f = lam(DEG, errors=(0, OK), timeout=1, duration_max=(1000.0, CRIT))
    assert function_timeout(f, topo(tmp_path)) == []


def test_an_older_version_with_a_shorter_timeout_is_not_a_version_to_go_back_to(tmp_path):
    f = lam(errors=(5, CRIT), timeout=3, duration_max=(3000.0, CRIT), previous_version="2",
            previous_timeout=1)  # fmt: skip
    (hit,) = function_timeout(f, topo(tmp_path))
    assert "previous_version" not in hit.facts
    # the runbook then skips the revert rung and raises the timeout
    rungs = load(None).rungs(
        ["lambda-worker"], hit.category, {**hit.facts, "function_name": "w"}, {"target": "w"}
    )
    assert rungs[0].action is None and rungs[1].action is not None
    assert rungs[1].action.kind == "set-function-timeout"


# -- reserved concurrency ------------------------------------------------------------------


def test_throttled_at_a_reservation_of_zero_removes_it(tmp_path):
    f = lam(throttles=(40, CRIT), throttle_rate=(1.0, CRIT), reserved_concurrency=0,
            concurrent_executions=(0, OK))  # fmt: skip
    (hit,) = reserved_concurrency_throttling(f, topo(tmp_path))
    assert hit.category == cat.THROTTLING and hit.facts["reserved_restore"] == -1


def test_throttled_at_a_positive_reservation_doubles_it(tmp_path):
    f = lam(throttles=(40, CRIT), reserved_concurrency=5, concurrent_executions=(5, DEG))
    (hit,) = reserved_concurrency_throttling(f, topo(tmp_path))
    assert hit.facts["reserved_restore"] == 10


def test_throttles_below_the_reservation_are_not_the_reservation(tmp_path):
    f = lam(throttles=(40, CRIT), reserved_concurrency=50, concurrent_executions=(3, OK))
    assert reserved_concurrency_throttling(f, topo(tmp_path)) == []


def test_throttles_without_a_reservation_are_not_the_reservation(tmp_path):
    f = lam(throttles=(40, CRIT), reserved_concurrency=None, concurrent_executions=(900, DEG))
    assert reserved_concurrency_throttling(f, topo(tmp_path)) == []
    # the generic throttling signature still names it, and no rung acts on it
    hits = [h for h in match([f], topo(tmp_path)) if h.category == cat.THROTTLING]
    assert hits and all("reserved_restore" not in h.facts for h in hits)


def test_throttles_not_judged_bad_are_not_acted_on(tmp_path):
    f = lam(DEG, throttles=(1, OK), reserved_concurrency=0)
    assert reserved_concurrency_throttling(f, topo(tmp_path)) == []


# -- configuration change -----------------------------------------------------------------


def change(**over: object) -> Finding:
    values: dict[str, object] = {
        "errors": (30, CRIT),
        "previous_version": "1",
        "config_changes": "Handler worker.handler -> receipts.handler",
        "config_released_at": NOW.isoformat(),
        "errors_began_at": (NOW + timedelta(seconds=20)).isoformat(),
        "window_start": (NOW - timedelta(minutes=5)).isoformat(),
        "timeout": 10,
        "duration_max": (40.0, OK),
    }
    values.update(over)
    return lam(**values)  # type: ignore[arg-type]


def test_errors_that_began_with_a_release_are_a_config_change(tmp_path):
    (hit,) = config_change_errors(change(), topo(tmp_path))
    assert hit.category == cat.CONFIG_CHANGE and hit.facts == {"previous_version": "1"}


def test_errors_that_were_there_before_the_release_are_not_its_doing(tmp_path):
    early = (NOW - timedelta(minutes=3)).isoformat()
    assert config_change_errors(change(errors_began_at=early), topo(tmp_path)) == []


def test_a_release_before_the_window_read_cannot_be_judged(tmp_path):
    late = (NOW + timedelta(seconds=5)).isoformat()
    assert config_change_errors(change(window_start=late), topo(tmp_path)) == []


def test_no_published_version_before_means_no_revert(tmp_path):
    assert config_change_errors(change(previous_version=None), topo(tmp_path)) == []
    assert config_change_errors(change(config_released_at=None), topo(tmp_path)) == []


def test_a_timeout_outranks_the_change_that_lowered_it(tmp_path):
    f = change(timeout=1, duration_max=(1000.0, CRIT), previous_timeout=10,
               config_changes="Timeout 10 -> 1")  # fmt: skip
    t = topo(tmp_path)
    best, _score, _group = rank_hits(match([f], t), [f], t)[0]
    assert best.category == cat.FUNCTION_TIMEOUT


# -- a consumer stopped by a reservation of 0, seen from its queue -------------------------

QUEUE_MAP = """\
service: payments-api
self:
  compute: {skill: test-sleep}
downstream:
  - {name: sqs-payments, type: queue, skill: test-sleep}
  - {name: lambda-worker, type: compute, skill: test-sleep}
"""


def queue_topo(tmp_path: Path) -> topology.Topology:
    (tmp_path / "q.yaml").write_text(QUEUE_MAP)
    return rootloop.load_map(tmp_path / "q.yaml", env={})


def backing_up(*, stalled: bool = True, depth: int = 73) -> Finding:
    """The queue as its check sees a consumer that deletes nothing while messages wait."""
    waiting = depth > 0
    return Finding(
        node="sqs-payments",
        skill="aws-sqs",
        status=CRIT if stalled else OK,
        summary=f"sqs-payments: {depth} visible",
        signals=[
            Signal(name="depth", value=depth, status=DEG if waiting else OK),
            Signal(name="depth_growing", value=waiting),
            Signal(name="consumer_stalled", value=stalled, status=CRIT if stalled else OK),
        ],
        suspects=[Suspect(node="lambda-worker", reason="its consumer", weight=0.8)],
    )


def quiet_function(reserved: int | None) -> Finding:
    """The function as its check sees it before anything tried an invocation: nothing."""
    return lam(OK, invocations=0, errors=0, throttles=0, reserved_concurrency=reserved)


def test_a_queue_backing_up_behind_a_reservation_of_zero_is_throttling_not_a_dead_consumer(
    tmp_path,
):
    t = queue_topo(tmp_path)
    findings = [backing_up(), quiet_function(0)]
    best, _score, _group = rank_hits(match(findings, t), findings, t)[0]
    assert best.component == "lambda-worker" and best.category == cat.THROTTLING
    assert best.facts == {"reserved_now": 0, "reserved_restore": -1}
    assert any("reserved concurrency is 0" in p for p in best.preconditions)


def test_a_positive_reservation_without_throttles_says_nothing_about_the_queue(tmp_path):
    t = queue_topo(tmp_path)
    findings = [backing_up(), quiet_function(5)]
    assert not [h for h in match(findings, t) if h.category == cat.THROTTLING]


def test_no_reservation_is_not_a_stop(tmp_path):
    t = queue_topo(tmp_path)
    findings = [backing_up(), quiet_function(None)]
    assert not [h for h in match(findings, t) if h.category == cat.THROTTLING]


def test_a_reservation_of_zero_with_a_queue_that_is_not_stalled_is_not_acted_on(tmp_path):
    # an idle function, stopped on purpose, behind a queue with nothing waiting
    t = queue_topo(tmp_path)
    findings = [backing_up(stalled=False, depth=0), quiet_function(0)]
    assert not [h for h in match(findings, t) if h.category == cat.THROTTLING]
