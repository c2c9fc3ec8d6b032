"""Periodic CloudWatch metrics the lab's AWS resources would publish themselves.

SQS (``AWS/SQS`` by ``QueueName``): ApproximateNumberOfMessagesVisible,
ApproximateNumberOfMessagesNotVisible, ApproximateAgeOfOldestMessage,
NumberOfMessagesSent, NumberOfMessagesDeleted — read from the emulator's queue
state. ECS (``AWS/ECS`` by ``ClusterName``/``ServiceName``): MemoryUtilization
from the agent's measurements. Lambda metrics are put by the worker itself.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from rootloop_lab import procs
from rootloop_lab.agent import Agent
from rootloop_lab.cloud import Emulator, client
from rootloop_lab.layout import CLUSTER, DLQ, QUEUE

log = logging.getLogger("rootloop_lab.metrics")
PERIOD = 5.0


class Metrics:
    def __init__(self, emu: Emulator, agent: Agent) -> None:
        self.emu = emu
        self.agent = agent
        self.cw: Any = client("cloudwatch", emu.endpoint)
        self.seen: dict[str, set[str]] = {QUEUE: set(), DLQ: set()}
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(PERIOD):
            try:
                self.publish()
            except Exception as exc:
                log.debug("metrics failed: %s", exc)

    def publish(self) -> None:
        for name in (QUEUE, DLQ):
            self._queue(name)
        self._ecs()

    def _queue(self, name: str) -> None:
        queue = self.emu.sqs.queues.get(name)
        if queue is None:
            return
        msgs = list(queue._messages)
        now = time.time()
        visible = [m for m in msgs if m.visible]
        ids = {m.id for m in msgs}
        sent = len(ids - self.seen[name])
        deleted = len(self.seen[name] - ids)
        self.seen[name] = ids
        oldest = max((now - m.sent_timestamp / 1000 for m in msgs), default=0.0)
        dims = [{"Name": "QueueName", "Value": name}]
        data = [
            ("ApproximateNumberOfMessagesVisible", len(visible), "Count"),
            ("ApproximateNumberOfMessagesNotVisible", len(msgs) - len(visible), "Count"),
            ("ApproximateAgeOfOldestMessage", round(oldest), "Seconds"),
            ("NumberOfMessagesSent", sent, "Count"),
            ("NumberOfMessagesDeleted", deleted, "Count"),
        ]
        self.cw.put_metric_data(
            Namespace="AWS/SQS",
            MetricData=[
                {"MetricName": n, "Value": v, "Unit": u, "Dimensions": dims} for n, v, u in data
            ],
        )

    def _ecs(self) -> None:
        kids = procs.children_map()
        data = []
        for service, tasks in self.agent.running().items():
            if not tasks:
                continue
            used = max(procs.tree_rss(t.proc.pid, kids) / t.limit * 100 for t in tasks)
            data.append(
                {
                    "MetricName": "MemoryUtilization",
                    "Value": round(used, 1),
                    "Unit": "Percent",
                    "Dimensions": [
                        {"Name": "ClusterName", "Value": CLUSTER},
                        {"Name": "ServiceName", "Value": service},
                    ],
                }
            )
        if data:
            self.cw.put_metric_data(Namespace="AWS/ECS", MetricData=data)
