"""aws-sqs's finding status and its DLQ verdict, once hand-written beside the table, are
table rows now: the old formulas are written out here and compared over a grid of
queues (depth, sent, deleted, the visible count's growth and whether it is abnormal,
the DLQ's depth and growth).

Deliberate differences — each signal says what the finding says:
- ``messages_deleted`` and ``consumer_stalled`` were critical for any stall, while the
  finding was critical only when nothing at all was deleted; now they are degraded when
  some messages were deleted, as the finding was;
- an abnormally growing queue made the finding degraded with no signal saying so; now
  ``depth_growing`` is degraded then.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from rootloop.analysis.anomaly import AnomalyScore
from rootloop.models import Status, worst
from rootloop.models.nodes import Node
from rootloop.skills.aws_sqs import QueueState, SqsSkill
from rootloop.skills.cloudwatch_metrics import MetricAssessment, MetricSpec

OK, DEG, CRIT = Status.OK, Status.DEGRADED, Status.CRITICAL
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def metric(label: str, values: list[float], abnormal: bool = False) -> MetricAssessment:
    a = MetricAssessment(
        spec=MetricSpec(namespace="AWS/SQS", name=label, label=label),
        incident=values,
        incident_times=[NOW + timedelta(minutes=i) for i in range(len(values))],
    )
    if abnormal:
        a.baseline = [1.0, 1.0, 1.0]
        a.anomaly = AnomalyScore(9.0, True, "up", 0, 1.0, max(values) * 10 + 10)
    return a


def state(depth, sent, deleted, growing, abnormal, dlq, dlq_growing) -> QueueState:
    visible = [float(depth), float(depth) + 50] if growing else [float(depth)]
    metrics = {
        "age_of_oldest_message": metric("age_of_oldest_message", [1.0]),
        "messages_sent": metric("messages_sent", [sent]),
        "messages_deleted": metric("messages_deleted", [deleted]),
        "visible_messages": metric("visible_messages", visible, abnormal),
    }
    if dlq is not None:
        metrics["dlq_visible_messages"] = metric(
            "dlq_visible_messages", [0.0, float(dlq)] if dlq_growing else [float(dlq)]
        )
    return QueueState(
        url="http://127.0.0.1/q",
        name="orders",
        attrs={"ApproximateNumberOfMessages": str(depth)},
        dlq_name="orders-dlq" if dlq is not None else None,
        dlq_depth=dlq,
        metrics=metrics,
    )


def old(st: QueueState, s) -> tuple[Status, dict[str, Status]]:
    depth = st.n("ApproximateNumberOfMessages")
    m = st.metrics
    sent, deleted = m["messages_sent"].total, m["messages_deleted"].total
    visible = m["visible_messages"]
    growing = len(visible.incident) >= 2 and visible.incident[-1] > visible.incident[0]
    stalled = sent > 0 and deleted < sent * s.min_delete_ratio and (depth > 0 or growing)
    statuses = [DEG if depth >= s.depth_warn else OK, m["age_of_oldest_message"].status]
    if stalled:
        statuses.append(CRIT if deleted == 0 else DEG)
    elif growing and visible.abnormal:
        statuses.append(DEG)
    dlq_status = OK
    if st.dlq_depth is not None and st.dlq_depth >= s.dlq_warn:
        d = m.get("dlq_visible_messages")
        dlq_growing = d is not None and len(d.incident) >= 2 and d.incident[-1] > d.incident[0]
        dlq_status = CRIT if dlq_growing else DEG
        statuses.append(dlq_status)
    signals = {
        "depth": statuses[0],
        "messages_deleted": CRIT if stalled else OK,
        "consumer_lag": DEG if stalled else OK,
        "consumer_stalled": CRIT if stalled else OK,
        "depth_growing": OK,
    }
    if st.dlq_name:
        signals["dlq_depth"] = dlq_status
    return worst(statuses), signals


GRID = list(
    itertools.product(
        [0, 5, 999, 1000, 5000],  # visible (depth_warn 1000)
        [0, 10, 100],  # sent
        [0, 4, 100],  # deleted
        [False, True],  # the visible count grows
        [False, True],  # ... abnormally
        [None, 0, 1, 3],  # DLQ depth (dlq_warn 1)
        [False, True],  # the DLQ grows
    )
)


@pytest.mark.parametrize("depth", [0, 5, 999, 1000, 5000])
def test_the_table_judges_the_queue_as_the_old_verdict_did(depth):
    skill = SqsSkill()
    s = skill.Settings.model_validate({"queue_name": "orders"})
    node = Node(name="orders", type="queue", skill="aws-sqs", role="downstream",
                component="orders", service="svc", timeout=5, settings=s)  # fmt: skip
    wrong = []
    for case in GRID:
        if case[0] != depth:
            continue
        st = state(*case)
        f = skill.judge(node, s, st)
        want_status, want = old(st, s)
        stalled = want["consumer_stalled"] is CRIT
        deleted = st.metrics["messages_deleted"].total
        if stalled and deleted > 0:  # deliberate: the signals say what the finding said
            want["messages_deleted"] = want["consumer_stalled"] = DEG
        growing, abnormal = case[3], case[4]
        if growing and abnormal:  # deliberate: the abnormal growth shows as a signal
            want["depth_growing"] = DEG
        got = {n: f.signal(n).status for n in want if f.signal(n) is not None}
        if got != want:
            wrong.append(f"{case}: {got} != {want}")
        if f.status is not want_status:
            wrong.append(f"{case}: finding {f.status} != {want_status}")
        if f.status is not worst([x.status for x in f.signals]):
            wrong.append(f"{case}: the finding is not its worst signal")
    assert not wrong, "\n".join(wrong[:20])
