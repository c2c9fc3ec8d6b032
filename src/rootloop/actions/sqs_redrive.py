"""Redrive a queue's dead-letter queue: an SQS message move task, then the return window.

Why this shape. A redrive is only worth something once the consumer handles the
messages that failed; whether it does is seen only after the move: a message that
still fails comes back to the DLQ after ``maxReceiveCount`` receives, each one a
visibility timeout apart. So the executor starts the move task (``StartMessageMoveTask``,
DLQ -> the queue whose redrive policy names it), waits for the task to complete
(``ListMessageMoveTasks``), then watches the DLQ for that return window —
``maxReceiveCount`` receives one visibility timeout apart, the receive attempt that
moves it, and a timeout's slack for the consumer's polls: ``(maxReceiveCount + 2) x
VisibilityTimeout`` —
bounded by the map's ``deploy_timeout``. What it reports (moved, back in the DLQ) is
what happened; the verify step judges the queue again afterwards.

Gates: the refusing policy gates, the AWS account (STS), and the real queue's and
DLQ's names and tags (``ListQueueTags``) before the move. Exactly once: the task
handle is journaled right after the start; a resumed run follows that task instead of
starting another, and ``already_applied`` asks SQS whether that task completed.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from rootloop.actions.gates import refuse_foreign_account, refuse_live, refuse_unless_lower
from rootloop.actions.types import ActionResult, RedriveDlq
from rootloop.errors import PlatformError, UserError
from rootloop.platforms.aws.errors import AWS_ERRORS, translate
from rootloop.topology import Topology

if TYPE_CHECKING:
    from rootloop.actions.dispatch import Dispatcher, Resource, Step

TASK_TIMEOUT_S = 120.0  # a move task of a lab-sized DLQ takes seconds; AWS', minutes at most
POLL_S = 1.0


def _queue(clients: Any, settings: Any) -> tuple[str, dict[str, str]]:
    sqs = clients.sqs
    url = (
        getattr(settings, "queue_url", None)
        or sqs.get_queue_url(QueueName=settings.queue_name)["QueueUrl"]
    )
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return str(url), dict(attrs)


def _depth(clients: Any, url: str) -> int:
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", "0"))


def _task(clients: Any, dlq_arn: str, handle: str) -> dict[str, Any] | None:
    results = clients.sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    return next((t for t in results if t.get("TaskHandle") == handle), None)


def apply(
    action: RedriveDlq, clients: Any, topology: Topology, settings: Any, step: Step
) -> ActionResult:
    """Move the DLQ's messages back, wait for the task and the return window."""
    if not isinstance(action, RedriveDlq):
        raise UserError(f"'{action.kind}' is not an SQS redrive")
    try:
        refuse_unless_lower(topology, action)
        refuse_foreign_account(topology, action, clients.client("sts"))
        url, attrs = _queue(clients, settings)
        policy = json.loads(attrs.get("RedrivePolicy") or "{}")
        dlq_arn = str(policy.get("deadLetterTargetArn") or "")
        if not dlq_arn:
            raise UserError(f"queue {url} has no redrive policy: there is no DLQ to redrive")
        dlq_url = clients.sqs.get_queue_url(QueueName=dlq_arn.rsplit(":", 1)[-1])["QueueUrl"]
        refuse_live(
            topology,
            action,
            [
                ("SQS queue", attrs["QueueArn"], _tags(clients, url)),
                ("SQS queue", dlq_arn, _tags(clients, dlq_url)),
            ],
        )
        handle = step.journal.get("task_handle")
        if handle is None:
            waiting = _depth(clients, dlq_url)
            if waiting == 0:
                return ActionResult(
                    ok=True,
                    changed=f"the DLQ {dlq_arn.rsplit(':', 1)[-1]} is empty; nothing to redrive",
                    no_op=True,
                    details={"dlq": dlq_arn},
                )
            step.before("start-move", f"redriving {waiting} message(s)", to_move=waiting)
            kwargs: dict[str, Any] = {"SourceArn": dlq_arn, "DestinationArn": attrs["QueueArn"]}
            if action.max_per_second:
                kwargs["MaxNumberOfMessagesPerSecond"] = action.max_per_second
            handle = clients.sqs.start_message_move_task(**kwargs)["TaskHandle"]
            step.journal["task_handle"] = handle
        task = _wait_task(clients, dlq_arn, str(handle))
        window = _return_window(attrs, policy, topology.policy.deploy_timeout)
        step.progress(
            f"moved {task.get('ApproximateNumberOfMessagesMoved', 0)}; watching the "
            f"DLQ for {window:g}s (a message that still fails comes back by then)"
        )
        time.sleep(window)
        back = _depth(clients, dlq_url)
    except AWS_ERRORS as exc:
        raise translate(exc) from exc
    moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
    name = attrs["QueueArn"].rsplit(":", 1)[-1]
    return ActionResult(
        ok=task.get("Status") == "COMPLETED",
        changed=f"moved {moved} message(s) from {dlq_arn.rsplit(':', 1)[-1]} back to {name} "
        f"(task {handle}); {back} in the DLQ {window:g}s later",
        undo="none: redriven messages are consumed (or return to the DLQ on failure)",
        details={
            "task_handle": handle,
            "moved": moved,
            "back_in_dlq": back,
            "return_window_s": window,
            "task_status": task.get("Status"),
            "failure": task.get("FailureReason", ""),
        },
    )


def _tags(clients: Any, url: str) -> dict[str, str]:
    return dict(clients.sqs.list_queue_tags(QueueUrl=url).get("Tags", {}))


def _wait_task(clients: Any, dlq_arn: str, handle: str) -> dict[str, Any]:
    deadline = time.monotonic() + TASK_TIMEOUT_S
    while time.monotonic() < deadline:
        task = _task(clients, dlq_arn, handle)
        if task is not None and task.get("Status") != "RUNNING":
            return task
        time.sleep(POLL_S)
    raise PlatformError(
        f"message move task {handle} did not finish within {TASK_TIMEOUT_S:g}s",
        "ListMessageMoveTasks shows its progress; cancel it with CancelMessageMoveTask",
    )


def _return_window(attrs: dict[str, str], policy: dict[str, Any], cap: float) -> float:
    """How long a redriven message that still fails takes to be back in the DLQ: its
    ``maxReceiveCount`` receives, each a visibility timeout after the previous, then the
    receive attempt that moves it, plus one timeout of slack for the consumer's polls;
    never more than ``cap`` (the map's deploy timeout)."""
    visibility = float(attrs.get("VisibilityTimeout", "30") or 30)
    receives = float(policy.get("maxReceiveCount", 1) or 1)
    return min(cap, (receives + 2) * visibility)


def already_applied(action: RedriveDlq, clients: Any, settings: Any, step: Step) -> bool:
    """This run's move task exists and completed."""
    handle = step.journal.get("task_handle")
    if not handle:
        return False
    try:
        _url, attrs = _queue(clients, settings)
        dlq_arn = str(json.loads(attrs.get("RedrivePolicy") or "{}").get("deadLetterTargetArn"))
        task = _task(clients, dlq_arn, str(handle))
    except AWS_ERRORS as exc:
        raise translate(exc) from exc
    return task is not None and task.get("Status") == "COMPLETED"


# -- the dispatch table's entry (rootloop.actions.dispatch.EXECUTORS) -----------------------


async def run(d: Dispatcher, action: RedriveDlq, step: Step) -> ActionResult:
    node = d.landing_node(action, step.ctx)
    return await asyncio.to_thread(
        apply, action, d.aws_clients(node), d.topology, node.settings, step
    )


async def applied(d: Dispatcher, action: RedriveDlq, step: Step) -> bool:
    node = d.probe_node(action, step.ctx)
    if node is None:
        return False
    return await asyncio.to_thread(
        already_applied, action, d.aws_clients(node), node.settings, step
    )


def resources(a: RedriveDlq) -> list[Resource]:
    return [("SQS queue", a.target)]
