"""``redrive-dlq`` with real boto3 against the emulator (moto plus the lab's
StartMessageMoveTask extension): the DLQ's messages go back to the queue whose redrive
policy names it; messages that a consumer still fails come back, and the result says so."""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

import rootloop
from rootloop import topology
from rootloop.actions.dispatch import Step
from rootloop.actions.sqs_redrive import already_applied, apply
from rootloop.actions.types import RedriveDlq
from rootloop.skills.aws_sqs import Settings


def _map(endpoint: str, environment: str = "staging") -> topology.Topology:
    path = Path(tempfile.mkdtemp(prefix="rootloop-map-")) / "rootloop.yaml"
    path.write_text(
        f"service: orders\nenvironment: {environment}\ndownstream:\n"
        f"  - {{name: orders-queue, type: queue, skill: aws-sqs, queue_name: orders,"
        f" endpoint_url: '{endpoint}', region: us-east-1}}\n"
        "policy: {deploy_timeout: 30}\n",
        encoding="utf-8",
    )
    return rootloop.load_map(path, env={})


def _queues(aws, visibility: int = 1) -> tuple[str, str]:
    dlq = aws.sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = aws.sqs.create_queue(
        QueueName="orders",
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    return queue, dlq


def _depth(aws, url: str) -> int:
    attrs = aws.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def test_the_dlq_goes_back_to_its_queue_and_a_working_consumer_drains_it(aws, moto_server):
    queue, dlq = _queues(aws)
    for i in range(3):
        aws.sqs.send_message(QueueUrl=dlq, MessageBody=f"order {i}")
    topo = _map(moto_server.endpoint_url)
    settings = Settings(queue_name="orders", endpoint_url=moto_server.endpoint_url)
    step = Step.detached("redrive-dlq")
    consumed: list[str] = []
    stop = threading.Event()

    def consumer() -> None:  # deletes whatever arrives
        while not stop.is_set():
            got = aws.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
            for m in got.get("Messages", []):
                consumed.append(m["Body"])
                aws.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    t = threading.Thread(target=consumer, daemon=True)
    t.start()
    try:
        result = apply(RedriveDlq(target="orders-queue"), aws, topo, settings, step)
    finally:
        stop.set()
        t.join(10)
    assert result.ok and not result.no_op, result.changed
    assert result.details["moved"] == 3 and result.details["back_in_dlq"] == 0
    assert sorted(consumed) == ["order 0", "order 1", "order 2"]
    assert _depth(aws, dlq) == 0
    assert already_applied(RedriveDlq(target="orders-queue"), aws, settings, step)


def test_messages_a_consumer_still_fails_come_back_and_the_result_says_so(aws, moto_server):
    queue, dlq = _queues(aws)
    aws.sqs.send_message(QueueUrl=dlq, MessageBody="poison")
    stop = threading.Event()

    def failing_consumer() -> None:  # receives, never deletes
        while not stop.is_set():
            aws.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)

    t = threading.Thread(target=failing_consumer, daemon=True)
    t.start()
    settings = Settings(queue_name="orders", endpoint_url=moto_server.endpoint_url)
    try:
        result = apply(
            RedriveDlq(target="orders-queue"),
            aws,
            _map(moto_server.endpoint_url),
            settings,
            Step.detached("redrive-dlq"),
        )
    finally:
        stop.set()
        t.join(10)
    assert result.details["moved"] == 1
    assert result.details["back_in_dlq"] == 1, result.changed
    assert _depth(aws, dlq) == 1


def test_an_empty_dlq_is_a_no_op(aws, moto_server):
    _queues(aws)
    settings = Settings(queue_name="orders", endpoint_url=moto_server.endpoint_url)
    result = apply(
        RedriveDlq(target="orders-queue"),
        aws,
        _map(moto_server.endpoint_url),
        settings,
        Step.detached("redrive-dlq"),
    )
    assert result.ok and result.no_op


def test_a_production_map_is_refused_before_any_move(aws, moto_server):
    import pytest

    from rootloop.errors import ActionRefused

    _queue, dlq = _queues(aws)
    aws.sqs.send_message(QueueUrl=dlq, MessageBody="order")
    settings = Settings(queue_name="orders", endpoint_url=moto_server.endpoint_url)
    with pytest.raises(ActionRefused):
        apply(
            RedriveDlq(target="orders-queue"),
            aws,
            _map(moto_server.endpoint_url, "production"),
            settings,
            Step.detached("redrive-dlq"),
        )
    assert _depth(aws, dlq) == 1
