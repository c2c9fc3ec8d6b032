"""SQS queue: is it backing up, and is its dead-letter queue filling?

Depth and in-flight come from the queue's attributes; the age of the oldest
message, messages sent vs deleted (consumer lag) and depth growth come from
CloudWatch; the DLQ comes from the redrive policy. A queue whose messages
arrive but do not leave points at its consumer: when the map names it
(``consumer: lambda-worker``), the finding suspects that node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field, model_validator

from rootloop.models import Evidence, Finding, Signal, Status, Suspect
from rootloop.models.nodes import Node, SkillSettings, node_default
from rootloop.platforms.aws.metrics import Window
from rootloop.platforms.aws.session import AwsClients, AwsConfig
from rootloop.skills import verdicts
from rootloop.skills.aws_base import AwsSkill
from rootloop.skills.cloudwatch_metrics import MetricAssessment, MetricSpec, assess
from rootloop.skills.verdicts import Rule, Value


class Settings(SkillSettings, AwsConfig):
    fill_from_node: ClassVar[Any] = node_default("queue_name", "queue_url")

    queue_url: str | None = None
    queue_name: str | None = None
    consumer: str | None = Field(default=None, description="the map node that consumes it")
    window_minutes: float = Field(default=15, gt=0, le=1440)
    baseline_minutes: float = Field(default=60, gt=0, le=10080)
    depth_warn: int = Field(default=1000, ge=1)
    age_warn_seconds: float = Field(default=300, gt=0)
    age_crit_seconds: float = Field(default=900, gt=0)
    dlq_warn: int = Field(default=1, ge=1)
    min_delete_ratio: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _one_queue(self) -> Settings:
        if not (self.queue_url or self.queue_name):
            raise ValueError("give 'queue_url' or 'queue_name'")
        return self


@dataclass
class QueueState:
    url: str
    name: str
    attrs: dict[str, str]
    dlq_name: str | None = None
    dlq_depth: int | None = None
    max_receive: int | None = None
    metrics: dict[str, MetricAssessment] = field(default_factory=dict)

    def n(self, attr: str) -> int:
        return int(self.attrs.get(attr, "0") or 0)


#: SQS metrics come in one-minute periods: a shorter window holds no complete period, so
#: "nothing sent, nothing deleted" there is no evidence about the consumer either way
MIN_METRIC_PERIODS = 2
METRIC_PERIOD_S = 60


def metrics_window(window: Window) -> Window:
    """The window, widened to ``MIN_METRIC_PERIODS`` metric periods (a verify sweep asks
    about the last few seconds; the rates it needs exist only per period)."""
    earliest = window.end - timedelta(seconds=MIN_METRIC_PERIODS * METRIC_PERIOD_S)
    if window.start <= earliest:
        return window
    shift = window.start - earliest
    return Window(start=earliest, end=window.end, baseline_start=window.baseline_start - shift)


def inspect(clients: AwsClients, s: Any, window: Window) -> QueueState:
    """Attributes, DLQ and CloudWatch numbers of the queue (blocking)."""
    window = metrics_window(window)
    url = s.queue_url or clients.sqs.get_queue_url(QueueName=s.queue_name)["QueueUrl"]
    attrs = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    name = attrs.get("QueueArn", url).rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    st = QueueState(url=url, name=name, attrs=attrs)
    if attrs.get("RedrivePolicy"):
        policy = json.loads(attrs["RedrivePolicy"])
        st.dlq_name = str(policy.get("deadLetterTargetArn", "")).rsplit(":", 1)[-1] or None
        st.max_receive = int(policy.get("maxReceiveCount", 0) or 0) or None
        if st.dlq_name:
            dlq_url = clients.sqs.get_queue_url(QueueName=st.dlq_name)["QueueUrl"]
            dattrs = clients.sqs.get_queue_attributes(
                QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            st.dlq_depth = int(dattrs.get("ApproximateNumberOfMessages", "0"))
    dims = {"QueueName": name}
    specs = [
        MetricSpec(
            namespace="AWS/SQS",
            name="ApproximateAgeOfOldestMessage",
            dimensions=dims,
            stat="Maximum",
            label="age_of_oldest_message",
            unit="s",
            warn=s.age_warn_seconds,
            crit=s.age_crit_seconds,
        ),
        MetricSpec(
            namespace="AWS/SQS",
            name="NumberOfMessagesSent",
            dimensions=dims,
            stat="Sum",
            label="messages_sent",
            direction="both",
        ),
        MetricSpec(
            namespace="AWS/SQS",
            name="NumberOfMessagesDeleted",
            dimensions=dims,
            stat="Sum",
            label="messages_deleted",
            direction="down",
        ),
        MetricSpec(
            namespace="AWS/SQS",
            name="ApproximateNumberOfMessagesVisible",
            dimensions=dims,
            stat="Maximum",
            label="visible_messages",
        ),
    ]
    if st.dlq_name:
        specs.append(
            MetricSpec(
                namespace="AWS/SQS",
                name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": st.dlq_name},
                stat="Maximum",
                label="dlq_visible_messages",
            )
        )
    st.metrics = {a.spec.signal_name: a for a in assess(clients, specs, window)}
    return st


#: a queue's signals (see ``rootloop.skills.verdicts``); the age of the oldest message is
#: judged by its metric (thresholds and anomaly score). A stalled consumer is degraded,
#: critical when it deleted nothing at all; a DLQ holding messages is degraded, critical
#: while it grows.
RULES: tuple[Rule, ...] = (
    Rule("depth", "above", warn="depth_warn"),
    Rule("in_flight"),
    Rule("delayed"),
    Rule("age_of_oldest_message"),
    Rule("messages_sent"),
    Rule("messages_deleted", "flag", on="consumer_stalled", crit_on="nothing_deleted"),
    Rule("consumer_lag", "flag", on="consumer_stalled"),
    Rule("consumer_stalled", "flag", crit_on="nothing_deleted"),
    # the visible count grows, abnormally fast against its own past
    Rule("depth_growing", "flag", on="growing_abnormally"),
    Rule("dlq_depth", "flag", on="dlq_holds", crit_on="dlq_growing", warn="dlq_warn"),
)


class SqsSkill(AwsSkill):
    name: ClassVar[str] = "aws-sqs"
    Settings: ClassVar[type[SkillSettings]] = Settings
    inspect = staticmethod(inspect)
    default_timeout: ClassVar[float] = 15.0

    def judge(self, node: Node, s: Any, st: QueueState) -> Finding:
        depth = st.n("ApproximateNumberOfMessages")
        in_flight = st.n("ApproximateNumberOfMessagesNotVisible")
        m = st.metrics
        age = m["age_of_oldest_message"]
        sent = m["messages_sent"].total
        deleted = m["messages_deleted"].total
        visible = m["visible_messages"]
        growing = len(visible.incident) >= 2 and visible.incident[-1] > visible.incident[0]
        # Stalled: far fewer deleted than sent AND messages wait for it (visible, or the
        # visible count growing). Deleting fewer than were sent while nothing waits is a
        # consumer that keeps up: the difference is in flight (received, being handled)
        # or in the dead-letter queue — a slow consumer or failing messages, not a stop.
        waiting = depth > 0 or growing
        stalled = sent > 0 and deleted < sent * s.min_delete_ratio and waiting
        lag = max(0.0, sent - deleted)

        dlq = m.get("dlq_visible_messages")
        dlq_growing = (
            dlq is not None and len(dlq.incident) >= 2 and dlq.incident[-1] > dlq.incident[0]
        )
        values: dict[str, Value | Signal] = {
            "depth": depth,
            "in_flight": in_flight,
            "delayed": st.n("ApproximateNumberOfMessagesDelayed"),
            "age_of_oldest_message": age.signal(),
            "messages_sent": sent,
            "messages_deleted": deleted,
            "consumer_lag": lag,
            "consumer_stalled": stalled,
            "depth_growing": growing,
        }
        if st.dlq_name:
            values["dlq_depth"] = st.dlq_depth
        dlq_holds = None if st.dlq_depth is None else st.dlq_depth >= s.dlq_warn
        facts: dict[str, Value] = {
            "nothing_deleted": stalled and deleted == 0,
            "growing_abnormally": growing and visible.abnormal,
            "dlq_holds": dlq_holds,
            "dlq_growing": bool(dlq_holds) and dlq_growing,
        }
        verdict = verdicts.assess(RULES, values, s, facts)
        status, signals = verdict.status, verdict.signals
        backing_up = status is not Status.OK and (stalled or growing or age.status is not Status.OK)
        parts = [f"{depth} visible, {in_flight} in flight"]
        if age.has_data:
            parts.append(f"oldest message {age.peak:g}s")
        if sent:
            parts.append(f"{sent:g} sent vs {deleted:g} deleted in the window")
        if stalled:
            parts.append("the consumer is not deleting messages")
        if st.dlq_name and st.dlq_depth:
            parts.append(f"DLQ {st.dlq_name} holds {st.dlq_depth} message(s)")
        suspects = []
        if s.consumer and (backing_up or dlq_holds):
            why = (
                "messages arrive but are not consumed"
                if stalled or growing
                else "messages fail processing and land in the DLQ"
            )
            suspects.append(
                Suspect(node=s.consumer, reason=f"consumer of {st.name}: {why}", weight=0.8)
            )
        evidence = [
            Evidence(kind="metric", title=a.spec.signal_name, text=a.describe()) for a in m.values()
        ]
        evidence.append(
            Evidence(
                kind="config",
                title=f"queue {st.name}",
                text=(
                    f"url {st.url}\nredrive: DLQ {st.dlq_name or '-'}, maxReceiveCount "
                    f"{st.max_receive or '-'}\n"
                    f"visibility timeout {st.attrs.get('VisibilityTimeout')}s"
                ),
            )
        )
        onsets = [a.onset for a in m.values() if a.onset and a.status is not Status.OK]
        return self.finding(
            node,
            status,
            f"{st.name}: " + ", ".join(parts),
            signals=signals,
            evidence=evidence,
            suspects=suspects,
            anomaly_started_at=min(onsets, default=None),
        )
