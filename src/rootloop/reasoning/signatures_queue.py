"""Messages that fail while their consumer consumes: poison messages and their DLQ.

A queue with a dead-letter queue shows two different faults the same way at first
glance — messages in the DLQ. What tells them apart is whether the consumer still
deletes messages:

- consumer down (``signatures.consumer_down``): nothing, or far less than arrives,
  is deleted; the queue backs up; every message would end in the DLQ in time;
- messages failing (here): the consumer deletes what arrives (others flow), and some
  messages are received again and again until ``maxReceiveCount`` moves them to the
  DLQ. Restarting or reconfiguring a consumer that works fixes nothing by itself; the
  messages in the DLQ need the consumer fixed for them and then a redrive.

With partial-batch responses (Lambda's ``ReportBatchItemFailures``) one bad message
fails alone; without them it fails its whole batch, the deletes stall, and the queue
reads as consumer-down — which, for the good messages held back with it, it is.
"""

from __future__ import annotations

from rootloop.models import Finding
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import Hit, bad, bad_signal, component_of, num
from rootloop.topology import Topology


def messages_failing(f: Finding, topo: Topology) -> list[Hit]:
    """Preconditions, all of them:
    - the queue's check is unhealthy and judged its dead-letter queue bad (``dlq_depth``:
      messages reached it, i.e. each was received ``maxReceiveCount`` times and never
      deleted);
    - the check judged the consumer not stalled (``consumer_stalled`` is present and
      false), and the consumer deleted messages in the window (``messages_deleted`` > 0):
      positive evidence that it consumes. A quiet queue (nothing sent, nothing deleted)
      says nothing about its consumer, so it does not qualify.
    The root is the consumer the check names (a component of the map), else the queue.
    """
    if f.skill != "aws-sqs" or not bad(f) or not bad_signal(f, "dlq_depth"):
        return []
    if f.value("consumer_stalled") is not False:
        return []
    deleted = num(f, "messages_deleted")
    if not deleted or deleted <= 0:
        return []
    components = set(topo.graph.nodes)
    consumer = next((s.node for s in f.suspects if s.node in components), None)
    dlq = f.value("dlq_depth")
    return [
        Hit(
            consumer or component_of(f, topo),
            cat.MESSAGES_FAILING,
            0.7,
            f"messages of {f.node} end in its dead-letter queue while the consumer "
            f"consumes (dlq depth {dlq}, {int(deleted)} deleted in the window)",
            {"queue": f.node},
            [f.summary],
            f.anomaly_started_at,
            f.node,
            [
                f"the DLQ holds {dlq} message(s)",
                f"the consumer deleted {int(deleted)} message(s) in the window: it consumes",
            ],
        )
    ]


SIGNATURES = [messages_failing]
