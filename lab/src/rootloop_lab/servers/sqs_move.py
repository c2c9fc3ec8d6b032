"""An emulator extension: SQS ``StartMessageMoveTask`` / ``ListMessageMoveTasks`` for moto.

moto 5.2.5 does not implement the DLQ redrive API, which rootloop's ``redrive-dlq``
action calls with real boto3. This adds both operations to moto's SQS responses, in
the shape the AWS API reference documents:

- ``StartMessageMoveTask(SourceArn, DestinationArn?, MaxNumberOfMessagesPerSecond?)``
  returns ``{TaskHandle}``. The source must be a queue that some queue names as its
  dead-letter target (AWS: "the source queue must be configured as a DLQ"); without
  ``DestinationArn`` messages go back to their original source queue (here: the one
  queue whose ``RedrivePolicy`` names the DLQ; several is an error, as AWS cannot guess
  either). One task per source may run at a time.
- The task moves the messages that were in the DLQ when it started, in a thread, at
  most ``MaxNumberOfMessagesPerSecond`` a second (AWS' default when unset is
  "optimised": here, as fast as the backend allows). Each message is sent to the
  destination with its body and attributes and deleted from the DLQ, so it starts
  over with a receive count of zero, as after a real redrive.
- ``ListMessageMoveTasks(SourceArn, MaxResults?)`` reports the source's tasks, newest
  first: ``RUNNING`` then ``COMPLETED`` (or ``FAILED`` with ``FailureReason``), with
  ``ApproximateNumberOfMessagesMoved`` / ``…ToMove`` and ``StartedTimestamp`` (epoch ms).

``install()`` patches moto's ``SQSResponse`` class in the process that serves moto
(the lab's supervisor, ``python -m rootloop_lab.servers.emulator``). Idempotent.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

_LOCK = threading.Lock()
_TASKS: dict[str, list[_MoveTask]] = {}  # source ARN -> tasks, oldest first


@dataclass
class _MoveTask:
    handle: str
    source_arn: str
    destination_arn: str
    per_second: int | None
    to_move: int
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    moved: int = 0
    status: str = "RUNNING"
    failure: str = ""

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TaskHandle": self.handle,
            "Status": self.status,
            "SourceArn": self.source_arn,
            "DestinationArn": self.destination_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.per_second is not None:
            out["MaxNumberOfMessagesPerSecond"] = self.per_second
        if self.failure:
            out["FailureReason"] = self.failure
        return out


def _name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def _sources_of(backend: Any, dlq_arn: str) -> list[Any]:
    """The queues whose redrive policy names ``dlq_arn`` (moto keeps it parsed, a dict)."""
    return [
        q
        for q in backend.queues.values()
        if isinstance(q.redrive_policy, dict)
        and q.redrive_policy.get("deadLetterTargetArn") == dlq_arn
    ]


def _move(backend: Any, task: _MoveTask) -> None:
    """Move up to ``task.to_move`` messages from the DLQ to the destination."""
    source, destination = _name(task.source_arn), _name(task.destination_arn)
    try:
        while task.moved < task.to_move:
            want = min(10, task.to_move - task.moved)
            if task.per_second:
                want = min(want, task.per_second)
            got = backend.receive_message(source, want, 0, 30)
            if not got:
                break  # the rest were taken by someone else or are in flight
            for msg in got:
                backend.send_message(
                    destination, msg.body, message_attributes=msg.message_attributes or None
                )
                backend.delete_message(source, msg.receipt_handle)
                task.moved += 1
            if task.per_second:
                time.sleep(len(got) / task.per_second)
        task.status = "COMPLETED"
    except Exception as exc:  # reported like AWS does: the task FAILED, with its reason
        task.status, task.failure = "FAILED", f"{type(exc).__name__}: {exc}"


def start_message_move_task(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.sqs.exceptions import QueueDoesNotExist, SQSException

    backend = self.sqs_backend
    source_arn = str(self._get_param("SourceArn") or "")
    dest_arn = self._get_param("DestinationArn")
    per_second = self._get_param("MaxNumberOfMessagesPerSecond")
    try:
        dlq = backend.get_queue(_name(source_arn))
    except QueueDoesNotExist:
        raise SQSException(
            "ResourceNotFoundException",
            f"The resource that you specified for the "
            f"SourceArn parameter doesn't exist: {source_arn}",
        ) from None
    if not dest_arn:
        sources = _sources_of(backend, dlq.queue_arn)
        if len(sources) != 1:
            raise SQSException(
                "InvalidParameterValueException",
                f"Source queue {source_arn} must be configured as a dead-letter queue of "
                f"exactly one queue to redrive without a DestinationArn ({len(sources)} found)",
            )
        dest_arn = sources[0].queue_arn
    else:
        backend.get_queue(_name(str(dest_arn)))
    with _LOCK:
        running = [t for t in _TASKS.get(source_arn, []) if t.status == "RUNNING"]
        if running:
            raise SQSException(
                "UnsupportedOperation", f"a message move task is already running for {source_arn}"
            )
        task = _MoveTask(
            handle=str(uuid.uuid4()),
            source_arn=source_arn,
            destination_arn=str(dest_arn),
            per_second=int(per_second) if per_second else None,
            to_move=int(dlq.approximate_number_of_messages),
        )
        _TASKS.setdefault(source_arn, []).append(task)
    threading.Thread(target=_move, args=(backend, task), daemon=True).start()
    return ActionResult({"TaskHandle": task.handle})


def list_message_move_tasks(self: Any) -> Any:
    from moto.core.responses import ActionResult

    source_arn = str(self._get_param("SourceArn") or "")
    limit = int(self._get_param("MaxResults") or 1)
    with _LOCK:
        tasks = list(reversed(_TASKS.get(source_arn, [])))[: max(1, min(10, limit))]
    return ActionResult({"Results": [t.entry() for t in tasks]})


def install() -> None:
    """Add the two operations to moto's SQS responses (once per process)."""
    from moto.sqs.responses import SQSResponse

    SQSResponse.start_message_move_task = start_message_move_task  # type: ignore[attr-defined]
    SQSResponse.list_message_move_tasks = list_message_move_tasks  # type: ignore[attr-defined]
