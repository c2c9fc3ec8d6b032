"""aws-sqs's verdict table gives the signal statuses its hand-written verdict gave: the
old formulas are written out here and compared over a grid of measurements."""

from __future__ import annotations

import itertools

import pytest

from rootloop.models import Status
from rootloop.models.nodes import Node
from rootloop.skills.aws_sqs import QueueState, SqsSkill
from rootloop.skills.cloudwatch_metrics import MetricAssessment, MetricSpec


def metric(label: str, values: list[float]) -> MetricAssessment:
    return MetricAssessment(
        spec=MetricSpec(namespace="AWS/SQS", name=label, label=label), incident=values
    )


def state(depth: int, sent: float, deleted: float, dlq: int | None) -> QueueState:
    return QueueState(
        url="http://127.0.0.1/q",
        name="orders",
        attrs={"ApproximateNumberOfMessages": str(depth)},
        dlq_name="orders-dlq" if dlq is not None else None,
        dlq_depth=dlq,
        metrics={
            "age_of_oldest_message": metric("age_of_oldest_message", [1.0]),
            "messages_sent": metric("messages_sent", [sent]),
            "messages_deleted": metric("messages_deleted", [deleted]),
            "visible_messages": metric("visible_messages", [float(depth)]),
        },
    )


@pytest.mark.parametrize(
    ("depth", "sent", "deleted", "dlq"),
    list(itertools.product([0, 5, 1000, 5000], [0, 10, 100], [0, 4, 100], [None, 0, 3])),
)
def test_the_table_judges_as_the_old_verdict_did(depth, sent, deleted, dlq):
    skill = SqsSkill()
    s = skill.Settings.model_validate({"queue_name": "orders"})
    node = Node(
        name="orders",
        type="queue",
        skill="aws-sqs",
        role="downstream",
        component="orders",
        service="svc",
        timeout=5,
        settings=s,
    )
    f = skill.judge(node, s, state(depth, sent, deleted, dlq))
    # stalled only when messages wait (here no growth: one point of visible messages)
    stalled = sent > 0 and deleted < sent * s.min_delete_ratio and depth > 0
    # a stall is critical when nothing at all was deleted, degraded otherwise: what the
    # finding always said (the signals said critical for any stall before; see
    # test_sqs_finding_verdict)
    crit_if_stalled = (
        (Status.CRITICAL if deleted == 0 else Status.DEGRADED) if stalled else Status.OK
    )
    depth_status = (
        Status.DEGRADED if depth >= s.depth_warn else Status.OK
    )  # the old judge(depth, depth_warn, None)
    assert f.signal("depth").status is depth_status
    assert f.signal("depth").threshold == s.depth_warn
    assert f.signal("messages_deleted").status is crit_if_stalled
    assert f.signal("consumer_lag").status is (Status.DEGRADED if stalled else Status.OK)
    assert f.signal("consumer_stalled").status is crit_if_stalled
    for info in ("in_flight", "delayed", "messages_sent", "depth_growing"):
        assert f.signal(info).status is Status.OK
    assert (f.signal("dlq_depth") is None) == (dlq is None)


def test_fewer_deleted_than_sent_while_nothing_waits_is_not_a_stall():
    """7 sent, 3 deleted, none visible: the rest is in flight or in the DLQ. The consumer
    keeps up (slowly, or with failing messages); it has not stopped."""
    skill = SqsSkill()
    s = skill.Settings.model_validate({"queue_name": "orders"})
    node = Node(
        name="orders",
        type="queue",
        skill="aws-sqs",
        role="downstream",
        component="orders",
        service="svc",
        timeout=5,
        settings=s,
    )
    assert skill.judge(node, s, state(0, 7, 3, 1)).value("consumer_stalled") is False
    assert skill.judge(node, s, state(5, 7, 3, 1)).value("consumer_stalled") is True
