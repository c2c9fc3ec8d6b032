"""Messages failing into a DLQ while the consumer consumes: each precondition, and the
look-alike (a consumer that stopped) that must not be named this."""

from __future__ import annotations

from pathlib import Path

import rootloop
from rootloop import topology
from rootloop.models import Finding, Signal, Status, Suspect
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import match
from rootloop.reasoning.signatures_queue import messages_failing
from rootloop.skills import registry

registry.register("test-sleep", "tests.unit.skills_for_tests:SleepSkill")

MAP = """\
service: payments-api
self:
  compute: {skill: test-sleep}
downstream:
  - {name: sqs-payments, type: queue, skill: test-sleep}
  - {name: lambda-worker, type: compute, skill: test-sleep}
"""
CRIT, DEG, OK = Status.CRITICAL, Status.DEGRADED, Status.OK


def topo(tmp_path: Path) -> topology.Topology:
    (tmp_path / "m.yaml").write_text(MAP)
    return rootloop.load_map(tmp_path / "m.yaml", env={})


def queue(*, stalled: bool | None, deleted: float | None, dlq: Status, depth: int = 0) -> Finding:
    signals = [
        Signal(name="depth", value=depth, status=DEG if depth > 50 else OK),
        Signal(name="depth_growing", value=depth > 50),
        Signal(name="dlq_depth", value=1 if dlq is not OK else 0, status=dlq),
    ]
    if stalled is not None:
        signals.append(
            Signal(name="consumer_stalled", value=stalled, status=CRIT if stalled else OK)
        )
    if deleted is not None:
        signals.append(Signal(name="messages_deleted", value=deleted))
    return Finding(
        node="sqs-payments",
        skill="aws-sqs",
        status=worst_of(dlq, DEG if depth > 50 else OK, CRIT if stalled else OK),
        summary="sqs-payments: DLQ holds messages",
        signals=signals,
        suspects=[Suspect(node="lambda-worker", reason="its consumer", weight=0.8)],
    )


def worst_of(*s: Status) -> Status:
    order = [OK, DEG, CRIT]
    return max(s, key=order.index)


def test_a_dlq_filling_while_the_consumer_deletes_is_messages_failing(tmp_path):
    [hit] = messages_failing(queue(stalled=False, deleted=40, dlq=DEG), topo(tmp_path))
    assert (hit.component, hit.category) == ("lambda-worker", cat.MESSAGES_FAILING)
    assert hit.facts == {"queue": "sqs-payments"}  # the redrive rung's target
    assert any("deleted 40" in p for p in hit.preconditions)


def test_a_quiet_queue_says_nothing_about_its_consumer(tmp_path):
    # nothing deleted in the window: no positive evidence the consumer consumes
    assert messages_failing(queue(stalled=False, deleted=0, dlq=DEG), topo(tmp_path)) == []


def test_an_unread_stall_signal_does_not_count_as_consuming(tmp_path):
    assert messages_failing(queue(stalled=None, deleted=40, dlq=DEG), topo(tmp_path)) == []


def test_an_empty_dlq_is_not_messages_failing(tmp_path):
    assert messages_failing(queue(stalled=False, deleted=40, dlq=OK), topo(tmp_path)) == []


def test_a_stopped_consumer_with_a_full_dlq_is_consumer_down_not_messages_failing(tmp_path):
    f = queue(stalled=True, deleted=0, dlq=CRIT, depth=300)
    assert messages_failing(f, topo(tmp_path)) == []
    assert [h.category for h in match([f], topo(tmp_path))] == [cat.CONSUMER_DOWN]


def test_the_queues_metrics_are_read_over_at_least_two_periods():
    from datetime import UTC, datetime, timedelta

    from rootloop.platforms.aws.metrics import Window
    from rootloop.skills.aws_sqs import metrics_window

    end = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    short = Window(
        start=end - timedelta(seconds=15), end=end, baseline_start=end - timedelta(hours=1)
    )
    wide = metrics_window(short)
    assert wide.end == end and wide.start == end - timedelta(minutes=2)
    assert wide.start - wide.baseline_start == short.start - short.baseline_start
    five = Window(
        start=end - timedelta(minutes=5), end=end, baseline_start=end - timedelta(hours=1)
    )
    assert metrics_window(five) == five


def test_a_bad_messages_signal_is_not_a_queue_backing_up(tmp_path):
    """consumer-down needs the queue backing up: its depth, its growth or its oldest
    message's age. A judged ``messages_deleted`` is none of those (its name holds
    "age" — the bug this guards: it once read as a backing-up queue)."""
    f = queue(stalled=True, deleted=3, dlq=DEG, depth=0)
    f.signals.append(Signal(name="messages_sent", value=7, status=CRIT))
    f.signals = [s for s in f.signals if s.name != "messages_deleted"]
    f.signals.append(Signal(name="messages_deleted", value=3, status=CRIT))
    assert all(h.category != cat.CONSUMER_DOWN for h in match([f], topo(tmp_path)))


def lambda_finding(status: Status) -> Finding:
    return Finding(
        node="lambda-worker",
        skill="aws-lambda",
        status=status,
        summary="lambda-worker: 5 invocations, 4 errors",
        signals=[Signal(name="error_rate", value=0.8 if status is not OK else 0.0, status=status)],
    )


def test_a_stalled_queue_whose_consumer_fails_its_own_check_is_consumer_down(tmp_path):
    """Messages wait, nothing is deleted, and the consumer's own check fails: it is not
    consuming, even before the queue's depth or age crosses a threshold."""
    f = queue(stalled=True, deleted=0, dlq=OK, depth=6)
    hits = match([f, lambda_finding(CRIT)], topo(tmp_path))
    assert [(h.component, h.category) for h in hits if h.category == cat.CONSUMER_DOWN] == [
        ("lambda-worker", cat.CONSUMER_DOWN)
    ]


def test_a_consumer_briefly_behind_is_not_consumer_down(tmp_path):
    """Fewer deletes than sends over a short window, the queue not backing up by its own
    signals, the consumer's own check healthy: a consumer behind, not a consumer down."""
    f = queue(stalled=True, deleted=0, dlq=OK, depth=2)
    hits = match([f, lambda_finding(OK)], topo(tmp_path))
    assert all(h.category != cat.CONSUMER_DOWN for h in hits)
