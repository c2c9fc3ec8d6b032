"""cloudwatch-logs against moto's server: error templates, a parsed Python trace, onset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rootloop.models import Status
from tests.integration.aws.conftest import run_check

TRACE = [
    "2026-11-27 10:02:13,001 ERROR worker - failed to process order 4812",
    "Traceback (most recent call last):",
    '  File "/app/worker.py", line 42, in handle',
    "    total = price_of(order)",
    '  File "/app/pricing.py", line 17, in price_of',
    "    return Decimal(order['price'])",
    "decimal.InvalidOperation: [<class 'decimal.ConversionSyntax'>]",
]


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def seed_logs(aws, group: str = "/ecs/orders-api") -> datetime:
    logs = aws.logs
    logs.create_log_group(logGroupName=group)
    for stream in ("api/1", "worker/1"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = datetime.now(UTC)
    first_error = now - timedelta(minutes=6)
    info = [
        {
            "timestamp": ms(now - timedelta(minutes=10, seconds=-i)),
            "message": f"INFO GET /orders/{i} 200 in {i % 40} ms",
        }
        for i in range(200)
    ]
    errors = []
    for i in range(30):  # one template, 30 times, ids vary
        errors.append(
            {
                "timestamp": ms(first_error + timedelta(seconds=10 * i)),
                "message": f"ERROR db timeout after 5000 ms on query {1000 + i}",
            }
        )
    logs.put_log_events(
        logGroupName=group,
        logStreamName="api/1",
        logEvents=sorted(info + errors, key=lambda e: e["timestamp"]),
    )
    trace_events = []
    for k in range(3):  # the same trace 3 times, one event per line as awslogs ships them
        base = now - timedelta(minutes=3, seconds=-20 * k)
        trace_events += [
            {"timestamp": ms(base) + j, "message": line} for j, line in enumerate(TRACE)
        ]
    logs.put_log_events(logGroupName=group, logStreamName="worker/1", logEvents=trace_events)
    return first_error


async def test_errors_digest_with_python_trace_and_onset(aws, aws_settings):
    first_error = seed_logs(aws)
    f = await run_check(
        "cloudwatch-logs", "orders-logs", {**aws_settings, "log_group": "/ecs/orders-api"}
    )
    assert f.status is Status.DEGRADED, f.summary  # 33 errors: over 1, under 100
    assert f.value("error_lines") == 33
    assert f.value("error_templates") == 2
    assert f.value("stack_traces") == 3
    assert f.value("exception") == "decimal.InvalidOperation"
    templates = next(e for e in f.evidence if e.kind == "log").text
    assert templates.splitlines()[0].startswith("30x ")  # grouped, counted, most frequent first
    assert "db timeout" in templates
    stack = next(e for e in f.evidence if e.kind == "stack").text
    assert "/app/pricing.py:17 in price_of" in stack and "/app/worker.py:42 in handle" in stack
    assert f.anomaly_started_at is not None
    assert abs((f.anomaly_started_at - first_error).total_seconds()) < 1.0


async def test_quiet_log_group_is_ok(aws, aws_settings):
    aws.logs.create_log_group(logGroupName="/ecs/quiet")
    aws.logs.create_log_stream(logGroupName="/ecs/quiet", logStreamName="s")
    now = datetime.now(UTC)
    aws.logs.put_log_events(
        logGroupName="/ecs/quiet",
        logStreamName="s",
        logEvents=[
            {"timestamp": ms(now - timedelta(seconds=60 - i)), "message": f"INFO ok {i}"}
            for i in range(50)
        ],
    )
    f = await run_check(
        "cloudwatch-logs", "quiet-logs", {**aws_settings, "log_group": "/ecs/quiet"}
    )
    assert f.status is Status.OK and f.value("error_lines") == 0
    assert f.anomaly_started_at is None


async def test_missing_log_group_is_reported_not_raised(aws, aws_settings):
    f = await run_check(
        "cloudwatch-logs", "orders-logs", {**aws_settings, "log_group": "/ecs/does-not-exist"}
    )
    assert f.status is Status.UNKNOWN and f.value("aws_error") == "not_found"
