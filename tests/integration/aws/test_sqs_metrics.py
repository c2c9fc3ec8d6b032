"""aws-sqs and cloudwatch-metrics against moto's server, with metrics as AWS publishes them."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from rootloop.models import Status
from tests.integration.aws.conftest import make_node, run_check

BASE = [50, 52, 48, 51, 49, 50, 53, 47, 50, 51, 49, 50]


def make_queue(aws, name: str = "orders", dlq: bool = True) -> str:
    attrs = {}
    if dlq:
        dlq_url = aws.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        arn = aws.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
    return aws.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]


async def test_stopped_consumer_is_found_and_blamed(aws, aws_settings, seed_metric):
    url = make_queue(aws)
    for i in range(40):
        aws.sqs.send_message(QueueUrl=url, MessageBody=f"order {i}")
    q = {"QueueName": "orders"}
    seed_metric("AWS/SQS", "NumberOfMessagesSent", q, BASE, [50] * 10, "Count")
    seed_metric("AWS/SQS", "NumberOfMessagesDeleted", q, BASE, [0] * 10, "Count")
    seed_metric(
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        q,
        [2] * 12,
        [60 * (i + 1) for i in range(10)],
        "Seconds",
    )
    seed_metric(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        q,
        [3] * 12,
        [50 * (i + 1) for i in range(10)],
        "Count",
    )

    f = await run_check(
        "aws-sqs",
        "orders-queue",
        {**aws_settings, "queue_name": "orders", "consumer": "lambda-worker"},
    )
    assert f.status is Status.CRITICAL, f.summary
    assert f.value("consumer_stalled") is True
    assert f.value("messages_sent") == 500 and f.value("messages_deleted") == 0
    assert f.value("depth") == 40
    assert f.value("age_of_oldest_message") == 600
    assert [s.node for s in f.suspects] == ["lambda-worker"]
    assert f.anomaly_started_at is not None


async def test_filling_dlq_is_found(aws, aws_settings, seed_metric):
    make_queue(aws)
    dlq_url = aws.sqs.get_queue_url(QueueName="orders-dlq")["QueueUrl"]
    for i in range(7):
        aws.sqs.send_message(QueueUrl=dlq_url, MessageBody=f"poison {i}")
    q = {"QueueName": "orders"}
    seed_metric("AWS/SQS", "NumberOfMessagesSent", q, BASE, [50] * 10, "Count")
    seed_metric("AWS/SQS", "NumberOfMessagesDeleted", q, BASE, [49] * 10, "Count")
    seed_metric(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": "orders-dlq"},
        [0] * 12,
        [0, 0, 1, 1, 2, 3, 4, 5, 6, 7],
        "Count",
    )

    f = await run_check(
        "aws-sqs",
        "orders-queue",
        {**aws_settings, "queue_name": "orders", "consumer": "lambda-worker"},
    )
    assert f.status is Status.CRITICAL, f.summary  # the DLQ is growing
    assert f.value("dlq_depth") == 7 and f.value("consumer_stalled") is False
    assert "orders-dlq" in f.summary
    assert f.suspects and "DLQ" in f.suspects[0].reason


async def test_healthy_queue_is_ok(aws, aws_settings, seed_metric):
    url = make_queue(aws, dlq=False)
    q = {"QueueName": "orders"}
    seed_metric("AWS/SQS", "NumberOfMessagesSent", q, BASE, [50] * 10, "Count")
    seed_metric("AWS/SQS", "NumberOfMessagesDeleted", q, BASE, [50] * 10, "Count")
    seed_metric("AWS/SQS", "ApproximateAgeOfOldestMessage", q, [2] * 12, [2] * 10, "Seconds")
    f = await run_check(
        "aws-sqs", "orders-queue", {**aws_settings, "queue_url": url, "consumer": "lambda-worker"}
    )
    assert f.status is Status.OK, f.summary
    assert not f.suspects


def test_sqs_settings_need_a_queue():
    with pytest.raises(ValidationError, match="queue_url"):
        make_node("aws-sqs", "q", {"region": "us-east-1"})


async def test_metric_reader_scores_incident_against_baseline(aws, aws_settings, seed_metric):
    dims = {"LoadBalancer": "app/orders/123"}
    seed_metric(
        "AWS/ApplicationELB",
        "TargetResponseTime",
        dims,
        [0.10, 0.11, 0.09, 0.10, 0.12, 0.10, 0.11, 0.10, 0.09, 0.10, 0.11, 0.10],
        [0.10, 0.11, 0.10, 0.95, 1.10, 1.05, 0.98, 1.20, 1.00, 1.10],
        "Seconds",
    )
    seed_metric("AWS/ApplicationELB", "RequestCount", dims, BASE, [50] * 10, "Count")
    metrics = [
        {
            "namespace": "AWS/ApplicationELB",
            "name": "TargetResponseTime",
            "dimensions": dims,
            "stat": "Average",
            "label": "latency",
            "unit": "s",
        },
        {
            "namespace": "AWS/ApplicationELB",
            "name": "RequestCount",
            "dimensions": dims,
            "stat": "Sum",
            "direction": "both",
        },
    ]
    f = await run_check("cloudwatch-metrics", "orders-alb", {**aws_settings, "metrics": metrics})
    assert f.status is Status.DEGRADED, f.summary
    assert f.signal("latency").status is Status.DEGRADED
    assert f.signal("RequestCount").status is Status.OK
    assert f.value("latency") == pytest.approx(1.2)
    assert "latency" in f.summary and "RequestCount" not in f.summary
    assert f.anomaly_started_at is not None


async def test_metric_without_data_is_unknown(aws, aws_settings):
    f = await run_check(
        "cloudwatch-metrics",
        "nothing",
        {
            **aws_settings,
            "metrics": [
                {
                    "namespace": "AWS/ECS",
                    "name": "CPUUtilization",
                    "dimensions": {"ClusterName": "x"},
                }
            ],
        },
    )
    assert f.status is Status.UNKNOWN and "no datapoints" in f.summary
