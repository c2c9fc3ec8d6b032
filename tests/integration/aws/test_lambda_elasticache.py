"""aws-lambda and aws-elasticache against moto's server."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

from rootloop.models import Status
from tests.integration.aws.conftest import run_check


def make_function(aws, name: str = "orders-worker", timeout: int = 30) -> str:
    role = aws.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handle(event, context):\n    return 1\n")
    aws.lambda_.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handle",
        Code={"ZipFile": buf.getvalue()},
        Timeout=timeout,
        MemorySize=256,
    )
    return name


def report_lines(aws, name: str) -> None:
    group = f"/aws/lambda/{name}"
    aws.logs.create_log_group(logGroupName=group)
    aws.logs.create_log_stream(logGroupName=group, logStreamName="2026/11/27/[$LATEST]abc")
    now = datetime.now(UTC)
    lines = [
        "REPORT RequestId: 1 Duration: 812.1 ms Billed Duration: 813 ms Memory Size: 256 MB "
        "Max Memory Used: 90 MB Init Duration: 1450.33 ms",
        "REPORT RequestId: 2 Duration: 20.4 ms Billed Duration: 21 ms Memory Size: 256 MB "
        "Max Memory Used: 91 MB",
        "REPORT RequestId: 3 Duration: 790.0 ms Billed Duration: 790 ms Memory Size: 256 MB "
        "Max Memory Used: 88 MB Init Duration: 1388.10 ms",
        "START RequestId: 4 Version: $LATEST",
    ]
    aws.logs.put_log_events(
        logGroupName=group,
        logStreamName="2026/11/27/[$LATEST]abc",
        logEvents=[
            {"timestamp": int((now - timedelta(minutes=5 - i)).timestamp() * 1000), "message": m}
            for i, m in enumerate(lines)
        ],
    )


async def test_throttled_function_is_found(aws, aws_settings, seed_metric):
    name = make_function(aws)
    aws.lambda_.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    report_lines(aws, name)
    d = {"FunctionName": name}
    seed_metric("AWS/Lambda", "Invocations", d, [100] * 12, [100] * 10, "Count")
    seed_metric("AWS/Lambda", "Errors", d, [0] * 12, [0] * 10, "Count")
    seed_metric(
        "AWS/Lambda", "Throttles", d, [0] * 12, [0, 0, 10, 20, 30, 30, 30, 30, 30, 30], "Count"
    )
    seed_metric("AWS/Lambda", "ConcurrentExecutions", d, [2] * 12, [5] * 10, "Count")
    seed_metric("AWS/Lambda", "Duration", d, [790] * 12, [800] * 10, "Milliseconds")

    f = await run_check("aws-lambda", "lambda-worker", {**aws_settings, "function_name": name})
    assert f.status is Status.CRITICAL, f.summary
    assert f.value("throttles") == 210
    assert f.signal("throttles").status is Status.CRITICAL
    assert f.value("concurrency_limit") == 5 and f.value("reserved_concurrency") == 5
    assert f.signal("concurrent_executions").status is Status.DEGRADED
    assert "reserved concurrency limit of 5" in f.summary
    assert f.value("cold_starts") == 2 and f.value("max_init_duration") == 1450.33
    assert f.signal("duration_max").status is Status.OK  # 0.8 s of a 30 s timeout


async def test_duration_near_timeout_and_disabled_trigger(aws, aws_settings, seed_metric):
    name = make_function(aws, timeout=3)
    q = aws.sqs.create_queue(QueueName="orders")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.lambda_.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, Enabled=False)
    d = {"FunctionName": name}
    seed_metric("AWS/Lambda", "Invocations", d, [10] * 12, [10] * 10, "Count")
    seed_metric("AWS/Lambda", "Duration", d, [500] * 12, [2900] * 10, "Milliseconds")
    f = await run_check(
        "aws-lambda", "lambda-worker", {**aws_settings, "function_name": name, "cold_starts": False}
    )
    assert f.status is Status.CRITICAL, f.summary
    assert f.signal("duration_max").status is Status.DEGRADED  # 2.9 s of a 3 s timeout
    assert f.value("event_source_problems") == 1 and "Disabled" in f.summary


async def test_cache_near_full_and_evicting(aws, aws_settings, seed_metric):
    aws.elasticache.create_cache_cluster(
        CacheClusterId="sessions", Engine="redis", CacheNodeType="cache.t3.micro", NumCacheNodes=1
    )
    d = {"CacheClusterId": "sessions"}
    seed_metric(
        "AWS/ElastiCache",
        "DatabaseMemoryUsagePercentage",
        d,
        [60] * 12,
        [70, 80, 90, 96, 97, 97, 97, 97, 97, 97],
        "Percent",
    )
    seed_metric(
        "AWS/ElastiCache", "Evictions", d, [0] * 12, [0, 0, 0, 40, 80, 90, 85, 90, 95, 99], "Count"
    )
    seed_metric("AWS/ElastiCache", "CurrConnections", d, [40] * 12, [42] * 10, "Count")
    seed_metric("AWS/ElastiCache", "EngineCPUUtilization", d, [10] * 12, [12] * 10, "Percent")
    f = await run_check(
        "aws-elasticache", "sessions-cache", {**aws_settings, "cluster_id": "sessions"}
    )
    assert f.status is Status.CRITICAL, f.summary
    assert f.value("cluster_status") == "available"
    assert f.value("memory_pct") == 97 and f.signal("memory_pct").status is Status.CRITICAL
    assert f.value("evictions") == 579 and f.signal("evictions").status is not Status.OK
    assert f.signal("connections").status is Status.OK
    assert "evictions: 579" in f.summary


async def test_replication_group_status(aws, aws_settings):
    aws.elasticache.create_replication_group(
        ReplicationGroupId="carts",
        ReplicationGroupDescription="carts",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        NumCacheClusters=2,
    )
    f = await run_check(
        "aws-elasticache", "carts-cache", {**aws_settings, "replication_group_id": "carts"}
    )
    assert f.status is Status.OK, f.summary
    assert f.value("members") >= 1 and "available" in f.summary
