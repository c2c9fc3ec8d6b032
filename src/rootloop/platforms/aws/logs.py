"""CloudWatch Logs: FilterLogEvents, paginated and bounded in events and time.

A log group can hold millions of lines; a sweep check has seconds. The reader
stops at ``max_events`` or at its deadline, whichever comes first, and says
so (``truncated``), so a finding built on a partial read is marked as such.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PAGE = 10_000  # FilterLogEvents' maximum page size


@dataclass
class LogEvent:
    at: datetime
    stream: str
    message: str


@dataclass
class LogFetch:
    events: list[LogEvent] = field(default_factory=list)
    pages: int = 0
    truncated: bool = False
    seconds: float = 0.0


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def from_ms(v: int) -> datetime:
    return datetime.fromtimestamp(v / 1000.0, UTC)


def filter_events(
    logs: Any,
    log_group: str,
    start: datetime,
    end: datetime,
    *,
    pattern: str | None = None,
    stream_prefix: str | None = None,
    max_events: int = 100_000,
    deadline: float | None = None,
) -> LogFetch:
    """Events of ``log_group`` between start and end matching ``pattern`` (blocking)."""
    began = time.perf_counter()
    out = LogFetch()
    kw: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": ms(start),
        "endTime": ms(end),
        "limit": min(PAGE, max_events),
    }
    if pattern:
        kw["filterPattern"] = pattern
    if stream_prefix:
        kw["logStreamNamePrefix"] = stream_prefix
    while True:
        resp = logs.filter_log_events(**kw)
        out.pages += 1
        for e in resp.get("events", []):
            out.events.append(
                LogEvent(from_ms(e["timestamp"]), e.get("logStreamName", ""), e.get("message", ""))
            )
        token = resp.get("nextToken")
        if not token:
            break
        if len(out.events) >= max_events or (deadline is not None and time.monotonic() >= deadline):
            out.truncated = True
            break
        kw["nextToken"] = token
    if len(out.events) > max_events:
        out.events, out.truncated = out.events[:max_events], True
    out.seconds = time.perf_counter() - began
    return out
