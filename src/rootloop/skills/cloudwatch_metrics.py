"""CloudWatch metrics: any metric, its incident window scored against a baseline.

Also the library the other AWS skills use for their numbers (``assess``):
SQS age of the oldest message, Lambda errors, ElastiCache evictions are all
CloudWatch metrics judged the same way — an absolute threshold when the map
gives one, and an anomaly score of the incident window against the window
just before it, so "10x the usual" is caught even without a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from rootloop.analysis.anomaly import AnomalyScore, score_series
from rootloop.models import Evidence, Finding, Signal, Status, worst
from rootloop.models.nodes import Node, SkillSettings
from rootloop.platforms.aws.errors import AWS_ERRORS, failure_finding
from rootloop.platforms.aws.metrics import Window, get_metric_data, query
from rootloop.platforms.aws.session import AwsClients, AwsConfig, clients_for
from rootloop.skills import verdicts
from rootloop.skills.base import BaseSkill, CheckContext
from rootloop.skills.verdicts import Rule, judge_value

Direction = Literal["up", "down", "both"]


class MetricSpec(BaseModel):
    """One metric to read; ``direction`` says which way is bad."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str
    name: str
    dimensions: dict[str, str] = {}
    stat: str = "Average"
    period: int = Field(default=60, ge=1)
    direction: Direction = "up"
    label: str | None = Field(default=None, description="signal name; default: the metric name")
    warn: float | None = None
    crit: float | None = None
    unit: str = ""
    min_change: float = Field(
        default=0.25, ge=0, description="relative change from the baseline median that counts"
    )

    @property
    def signal_name(self) -> str:
        return self.label or self.name


@dataclass
class MetricAssessment:
    """A metric's incident window, its baseline and the verdict on it."""

    spec: MetricSpec
    baseline: list[float] = field(default_factory=list)
    incident: list[float] = field(default_factory=list)
    incident_times: list[datetime] = field(default_factory=list)
    anomaly: AnomalyScore | None = None
    status: Status = Status.OK
    onset: datetime | None = None

    @property
    def has_data(self) -> bool:
        return bool(self.incident)

    @property
    def latest(self) -> float | None:
        return self.incident[-1] if self.incident else None

    @property
    def peak(self) -> float | None:
        """The worst value of the incident window (lowest when low is bad)."""
        if not self.incident:
            return None
        return min(self.incident) if self.spec.direction == "down" else max(self.incident)

    @property
    def total(self) -> float:
        return float(sum(self.incident))

    @property
    def abnormal(self) -> bool:
        """Statistically abnormal and a change big enough to matter (flat baselines)."""
        if self.anomaly is None or not self.anomaly.abnormal:
            return False
        base, inc = self.anomaly.baseline_median, self.anomaly.incident_median
        if not self.baseline:
            return False  # nothing to compare against: thresholds only
        return abs(inc - base) >= self.spec.min_change * max(abs(base), 1e-9)

    def signal(self, no_data: Status = Status.OK) -> Signal:
        """The metric as a signal. ``no_data`` is the status of a metric without
        datapoints: OK where the skill knows the metric is published only on activity
        (AWS's own: a Lambda's Duration while nothing runs), UNKNOWN where it does not."""
        th = self.spec.crit if self.spec.crit is not None else self.spec.warn
        peak = None if self.peak is None else round(self.peak, 3)
        return Signal(
            name=self.spec.signal_name,
            value=peak,
            unit=self.spec.unit,
            threshold=th,
            status=self.status if self.has_data else no_data,
        )

    def describe(self) -> str:
        if not self.has_data:
            return f"{self.spec.signal_name}: no data"
        text = f"{self.spec.signal_name}: peak {self.peak:g}{self.spec.unit}"
        if self.anomaly is not None and self.baseline:
            text += (
                f", baseline median {self.anomaly.baseline_median:g}, incident median "
                f"{self.anomaly.incident_median:g}, anomaly score {self.anomaly.score:.1f}"
            )
        return text


def threshold_rule(spec: MetricSpec) -> Rule:
    """The metric's thresholds as a verdict rule: ``below`` when low is bad, else ``above``
    (a metric bad both ways has its thresholds on the high side)."""
    direction: verdicts.Direction = "below" if spec.direction == "down" else "above"
    return Rule(spec.signal_name, direction, warn=spec.warn, crit=spec.crit, unit=spec.unit)


#: far from its own baseline (``MetricAssessment.abnormal``): degraded, whatever the
#: thresholds say
ANOMALY = Rule("anomaly", "flag")


def _judge(spec: MetricSpec, value: float) -> Status:
    return judge_value(threshold_rule(spec), value, None, {})


def assess(clients: AwsClients, specs: list[MetricSpec], window: Window) -> list[MetricAssessment]:
    """Read every metric over baseline + incident window and judge each (blocking)."""
    if not specs:
        return []
    queries = [query(s.namespace, s.name, s.dimensions, s.stat, s.period) for s in specs]
    series = get_metric_data(clients.cloudwatch, queries, window.baseline_start, window.end)
    out = []
    for spec, s in zip(specs, series, strict=True):
        base, inc, times = s.split(window.start)
        a = MetricAssessment(spec=spec, baseline=base, incident=inc, incident_times=times)
        if inc:
            a.anomaly = score_series(base, inc, spec.direction)
            threshold = _judge(spec, a.peak if a.peak is not None else 0.0)
            a.status = worst([threshold, judge_value(ANOMALY, a.abnormal, None, {})])
            a.onset = _onset(a)
        out.append(a)
    return out


def _onset(a: MetricAssessment) -> datetime | None:
    """When the metric went bad: first threshold crossing, else the anomaly's onset."""
    spec = a.spec
    th = spec.warn if spec.warn is not None else spec.crit
    if th is not None:
        for t, v in zip(a.incident_times, a.incident, strict=True):
            if _judge(spec, v) is not Status.OK:
                return t
    if a.abnormal and a.anomaly is not None and a.anomaly.onset_index is not None:
        idx = min(max(a.anomaly.onset_index, 0), len(a.incident_times) - 1)
        return a.incident_times[idx]
    return None


def earliest_onset(assessments: list[MetricAssessment]) -> datetime | None:
    onsets = [a.onset for a in assessments if a.onset is not None and a.status is not Status.OK]
    return min(onsets, default=None)


class Settings(SkillSettings, AwsConfig):
    metrics: list[MetricSpec] = Field(min_length=1)
    window_minutes: float = Field(default=15, gt=0, le=1440)
    baseline_minutes: float = Field(default=60, gt=0, le=10080)


class CloudWatchMetricsSkill(BaseSkill):
    name: ClassVar[str] = "cloudwatch-metrics"
    Settings: ClassVar[type[SkillSettings]] = Settings
    default_timeout: ClassVar[float] = 20.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        s: Any = node.settings
        window = Window.around(
            ctx.window_start, ctx.window_end, s.window_minutes, s.baseline_minutes
        )
        try:
            found = await ctx.run_blocking(assess, clients_for(s), list(s.metrics), window)
        except AWS_ERRORS as exc:
            return failure_finding(node.name, self.name, exc)
        return self.summarize(node, found)

    def summarize(self, node: Node, found: list[MetricAssessment]) -> Finding:
        # Each metric was judged when it was read (its thresholds, its anomaly score); one
        # without datapoints is unknown: a metric the map names that CloudWatch has no
        # data for (idle, or a wrong name or dimension) cannot vouch for the node.
        signals = [a.signal(no_data=Status.UNKNOWN) for a in found]
        bad = [a for a in found if a.status is not Status.OK]
        status = worst([sig.status for sig in signals])
        if not any(a.has_data for a in found):
            status = Status.UNKNOWN
            summary = f"no datapoints for {len(found)} metric(s) in the window"
        elif bad:
            summary = "; ".join(a.describe() for a in bad)
        else:
            summary = f"{len(found)} metric(s) within their usual range"
        missing = [a.spec.signal_name for a in found if not a.has_data]
        if missing and len(missing) < len(found):
            summary += f"; no datapoints for {', '.join(missing)}"
        evidence = [
            Evidence(kind="metric", title=a.spec.signal_name, text=a.describe()) for a in found
        ]
        return self.finding(
            node,
            status,
            summary[:500],
            signals=signals,
            evidence=evidence,
            anomaly_started_at=earliest_onset(found),
        )
