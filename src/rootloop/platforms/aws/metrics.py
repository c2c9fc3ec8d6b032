"""CloudWatch metrics: one GetMetricData reader and the incident/baseline windows.

Every AWS skill reads its numbers here (SQS age of oldest message, Lambda
errors, ElastiCache evictions...), so paging, batching and the time windows
are written once. Calls are blocking; run them on the sweep's thread pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_QUERIES = 500  # GetMetricData's limit per request
MAX_PAGES = 20


@dataclass(frozen=True)
class Window:
    """The incident window and the baseline just before it."""

    start: datetime
    end: datetime
    baseline_start: datetime

    @classmethod
    def around(
        cls, start: datetime | None, end: datetime | None, minutes: float, baseline_minutes: float
    ) -> Window:
        end = end or datetime.now(UTC)
        start = start or end - timedelta(minutes=minutes)
        return cls(start=start, end=end, baseline_start=start - timedelta(minutes=baseline_minutes))

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60.0


@dataclass(frozen=True)
class MetricQuery:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: str = "Average"
    period: int = 60

    @property
    def label(self) -> str:
        dims = ",".join(f"{k}={v}" for k, v in self.dimensions)
        return f"{self.namespace}/{self.name}[{dims}] {self.stat}"


@dataclass
class Series:
    query: MetricQuery
    timestamps: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def split(self, at: datetime) -> tuple[list[float], list[float], list[datetime]]:
        """Values before ``at`` (baseline), from ``at`` on (incident), incident timestamps."""
        base = [v for t, v in zip(self.timestamps, self.values, strict=True) if t < at]
        inc = [(t, v) for t, v in zip(self.timestamps, self.values, strict=True) if t >= at]
        return base, [v for _, v in inc], [t for t, _ in inc]

    def between(self, start: datetime, end: datetime) -> list[float]:
        return [v for t, v in zip(self.timestamps, self.values, strict=True) if start <= t <= end]


def query(
    namespace: str,
    name: str,
    dimensions: dict[str, str] | None = None,
    stat: str = "Average",
    period: int = 60,
) -> MetricQuery:
    return MetricQuery(namespace, name, tuple(sorted((dimensions or {}).items())), stat, period)


def get_metric_data(
    cloudwatch: Any, queries: Sequence[MetricQuery], start: datetime, end: datetime
) -> list[Series]:
    """Fetch every query between start and end, oldest point first. Bounded in pages."""
    out = [Series(q) for q in queries]
    for base in range(0, len(queries), MAX_QUERIES):
        batch = queries[base : base + MAX_QUERIES]
        req: dict[str, Any] = {
            "MetricDataQueries": [
                {
                    "Id": f"m{base + i}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": q.namespace,
                            "MetricName": q.name,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in q.dimensions],
                        },
                        "Period": q.period,
                        "Stat": q.stat,
                    },
                    "ReturnData": True,
                }
                for i, q in enumerate(batch)
            ],
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        for _ in range(MAX_PAGES):
            resp = cloudwatch.get_metric_data(**req)
            for r in resp.get("MetricDataResults", []):
                s = out[int(r["Id"][1:])]
                s.timestamps.extend(_utc(t) for t in r.get("Timestamps", []))
                s.values.extend(float(v) for v in r.get("Values", []))
            token = resp.get("NextToken")
            if not token:
                break
            req["NextToken"] = token
    for s in out:
        pairs = sorted(zip(s.timestamps, s.values, strict=True))
        s.timestamps = [t for t, _ in pairs]
        s.values = [v for _, v in pairs]
    return out


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)
