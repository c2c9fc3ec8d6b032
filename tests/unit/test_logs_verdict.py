"""cloudwatch-logs' verdict table gives the statuses its hand-written verdict gave (the
old ``judge(errors, error_warn, error_crit)``, written out here), over a grid of error
counts at and around the thresholds, with and without stack traces."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from rootloop.models import Status
from rootloop.models.nodes import Node
from rootloop.platforms.aws.logs import LogEvent
from rootloop.platforms.aws.metrics import Window
from rootloop.skills.cloudwatch_logs import CloudWatchLogsSkill, digest_events

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/app/orders.py", line 12, in handle\n'
    "    db.query()\n"
    "psycopg.OperationalError: connection refused"
)


def events(errors: int, traces: bool) -> list[LogEvent]:
    out = [LogEvent(NOW, "s", "INFO all good")]
    lines = errors - 1 if traces and errors else errors
    out += [LogEvent(NOW + timedelta(seconds=i), "s", f"ERROR boom {i}") for i in range(lines)]
    if traces and errors:
        out.append(LogEvent(NOW + timedelta(minutes=1), "s", TRACE))
    return out


def old_status(errors: int, warn: int, crit: int) -> Status:
    if errors >= crit:
        return Status.CRITICAL
    if errors >= warn:
        return Status.DEGRADED
    return Status.OK


@pytest.mark.parametrize(
    ("errors", "thresholds", "traces"),
    list(
        itertools.product(
            [0, 1, 2, 4, 5, 9, 10, 11, 99, 100, 101],
            [(1, 100), (5, 10), (1, 1), (10, 5)],
            [False, True],
        )
    ),
)
def test_the_table_judges_as_the_old_verdict_did(errors, thresholds, traces):
    warn, crit = thresholds
    skill = CloudWatchLogsSkill()
    s = skill.Settings.model_validate(
        {"log_group": "/ecs/api", "error_warn": warn, "error_crit": crit}
    )
    node = Node(name="api-logs", type="logs", skill="cloudwatch-logs", role="self",
                component="api", service="api", timeout=20, settings=s)  # fmt: skip
    d = digest_events(events(errors, traces))
    assert d.errors == errors
    f = skill.judge(node, s, d, Window.around(NOW, NOW + timedelta(minutes=5), 15, 0))
    want = old_status(errors, warn, crit)
    assert f.status is want
    assert f.signal("error_lines").status is want
    assert f.signal("error_lines").threshold == warn
    if traces and errors:
        assert f.signal("exception").status is want
        assert f.signal("exception").value == "psycopg.OperationalError"
        assert f.signal("root_exception").status is Status.OK
    else:
        assert f.signal("exception") is None
    for name in ("error_templates", "stack_traces", "lines_scanned", "truncated", "window_start"):
        assert f.signal(name).status is Status.OK
