"""``prometheus``: what a Prometheus server says about the system — its firing alerts,
and the map's PromQL queries judged against thresholds and against their own past.

A node of kind ``prometheus`` points at a Prometheus server (``url``). The check:

- reads the server's alerts (``/api/v1/alerts``), those whose labels contain
  ``alert_match``: a firing alert labelled ``severity`` in ``critical_severities``
  makes the node critical, any other firing one degraded; pending alerts are evidence
  only (they have not held for their ``for:`` yet). An alert whose ``node_label``
  (``service``) names a node of the map makes that node a suspect: Prometheus has
  already said where it hurts.
- runs each configured query (``/api/v1/query``): every series of the result judged
  against the query's ``warn``/``crit`` in its bad ``direction``; with
  ``baseline_minutes`` also as a range query (``/api/v1/query_range``), the incident
  window scored against the window before it with rootloop's anomaly scoring, so
  "ten times the usual" shows without a threshold.

Results are bounded: at most ``max_series`` series per query and ``max_alerts``
alerts are reported, the worst first, the rest counted. A bad query (Prometheus
answers ``bad_data``) is this node's ``unknown`` with Prometheus's own error, never
a crash of the sweep.

The HTTP calls go through ``PrometheusApi`` below, a small client of Prometheus's
documented HTTP API (v1); it is the one place to swap for a shared client.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rootloop.analysis.anomaly import score_series
from rootloop.models import Evidence, Finding, Signal, Status, Suspect, worst
from rootloop.skills import verdicts
from rootloop.skills.base import BaseSkill, CheckContext, Node, SkillSettings
from rootloop.skills.verdicts import Rule, judge_value, shown_threshold

Direction = Literal["up", "down"]


class PrometheusError(Exception):
    """Prometheus answered, but with an error (``status: error``) or an unreadable body."""


class PrometheusApi:
    """Prometheus's HTTP API v1: instant and range queries, and the alerts it holds."""

    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.client, self.headers, self.timeout = client, headers or {}, timeout

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        resp = await self.client.get(
            self.base + path, params=params, headers=self.headers, timeout=self.timeout
        )
        try:
            body = resp.json()
        except ValueError:
            raise PrometheusError(f"HTTP {resp.status_code}: not a Prometheus answer") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            what = body.get("error") if isinstance(body, dict) else None
            kind = body.get("errorType") if isinstance(body, dict) else None
            raise PrometheusError(f"HTTP {resp.status_code} {kind or 'error'}: {what or body}")
        return body.get("data")

    async def query(self, expr: str, at: datetime | None = None) -> list[dict[str, Any]]:
        """An instant vector (a scalar comes back as one series with no labels)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        data = await self._get("/api/v1/query", params)
        if data.get("resultType") in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data.get("result") or [])

    async def query_range(
        self, expr: str, start: datetime, end: datetime, step_seconds: float
    ) -> list[dict[str, Any]]:
        params = {
            "query": expr,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step_seconds:g}",
        }
        data = await self._get("/api/v1/query_range", params)
        return list(data.get("result") or [])

    async def alerts(self) -> list[dict[str, Any]]:
        """Every alert the server's rules hold: pending and firing."""
        data = await self._get("/api/v1/alerts")
        return list(data.get("alerts") or [])


class PromQuery(BaseModel):
    """One PromQL expression to judge; ``direction`` says which way is bad."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expr: str = Field(min_length=1)
    label: str = Field(min_length=1, description="the signal's name")
    direction: Direction = "up"
    warn: float | None = None
    crit: float | None = None
    unit: str = ""
    baseline_minutes: float | None = Field(
        default=None, gt=0, description="also score the incident window against this much before it"
    )
    step_seconds: float = Field(default=15.0, gt=0)


class PrometheusSettings(SkillSettings):
    url: str
    alerts: bool = True
    alert_match: dict[str, str] = {}
    critical_severities: list[str] = ["critical", "page"]
    node_label: str = "service"
    queries: list[PromQuery] = []
    window_minutes: float = Field(default=10.0, gt=0)
    max_series: int = Field(default=10, ge=1, le=1000)
    max_alerts: int = Field(default=20, ge=1, le=1000)
    headers: dict[str, str] = {}
    verify_tls: bool = True

    @model_validator(mode="after")
    def _url_has_scheme(self) -> PrometheusSettings:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https:// (got {self.url!r})")
        return self


class PrometheusSkill(BaseSkill):
    name = "prometheus"
    Settings = PrometheusSettings
    default_timeout = 15.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        s = node.settings
        assert isinstance(s, PrometheusSettings)
        api = PrometheusApi(
            s.url, ctx.http(s.verify_tls), headers=s.headers, timeout=max(0.1, node.timeout * 0.9)
        )
        signals: list[Signal] = []
        evidence: list[Evidence] = []
        suspects: list[Suspect] = []
        statuses: list[Status] = [Status.OK]
        summary: list[str] = []
        onset: datetime | None = None
        try:
            if s.alerts:
                status, said = await self._alerts(api, s, node, signals, evidence, suspects)
                statuses.append(status)
                summary += said
            for q in s.queries:
                status, said, started = await self._query(api, q, s, ctx, signals, evidence)
                statuses.append(status)
                summary += said
                if started is not None and (onset is None or started < onset):
                    onset = started
        except httpx.TimeoutException:
            return self.finding(
                node, Status.UNREACHABLE, f"{s.url} did not answer in time", error="timeout"
            )
        except httpx.HTTPError as exc:
            return self.unreachable(node, exc)
        except PrometheusError as exc:
            text = " ".join(str(exc).split())[:500]
            return self.finding(
                node,
                Status.UNKNOWN,
                f"Prometheus refused a request: {text}",
                error=text,
                signals=signals,
                evidence=evidence,
            )
        # as bad as its worst signal too (an anomaly beside a series without a sample)
        status = worst([*statuses, *(x.status for x in signals)])
        return self.finding(
            node,
            status,
            "; ".join(summary) if summary else "no alert firing, every query within bounds",
            signals=signals,
            evidence=evidence,
            suspects=suspects,
            anomaly_started_at=onset,
        )

    async def _alerts(
        self,
        api: PrometheusApi,
        s: PrometheusSettings,
        node: Node,
        signals: list[Signal],
        evidence: list[Evidence],
        suspects: list[Suspect],
    ) -> tuple[Status, list[str]]:
        held = [
            a
            for a in await api.alerts()
            if all(a.get("labels", {}).get(k) == v for k, v in s.alert_match.items())
        ]
        firing = [a for a in held if a.get("state") == "firing"]
        pending = [a for a in held if a.get("state") == "pending"]
        critical = [a for a in firing if _labels(a).get("severity") in s.critical_severities]
        verdict = verdicts.assess(
            ALERT_RULES,
            {"alerts_firing": len(firing), "alerts_pending": len(pending)},
            facts={"critical_firing": bool(critical)},
        )
        status = verdict.status
        signals.extend(verdict.signals)
        shown = sorted(firing, key=lambda a: a not in critical) + pending
        lines = [_alert_line(a) for a in shown[: s.max_alerts]]
        if len(shown) > s.max_alerts:
            lines.append(f"... and {len(shown) - s.max_alerts} more")
        if lines:
            evidence.append(
                Evidence(kind="event", title="Prometheus alerts", text="\n".join(lines))
            )
        for alert in firing:
            named = _labels(alert).get(s.node_label)
            if named and named != node.name and named not in {x.node for x in suspects}:
                reason = f"Prometheus alert {_labels(alert).get('alertname', '?')} firing: "
                reason += _annotations(alert).get("summary", "") or _alert_line(alert)
                suspects.append(
                    Suspect(
                        node=named, reason=reason[:300], weight=1.0 if alert in critical else 0.6
                    )
                )
        names = sorted({_labels(a).get("alertname", "?") for a in firing})
        return status, ([f"{len(firing)} alert(s) firing: {', '.join(names)}"] if firing else [])

    async def _query(
        self,
        api: PrometheusApi,
        q: PromQuery,
        s: PrometheusSettings,
        ctx: CheckContext,
        signals: list[Signal],
        evidence: list[Evidence],
    ) -> tuple[Status, list[str], datetime | None]:
        end = ctx.window_end or datetime.now(UTC)
        result = await api.query(q.expr, end)
        judged = []
        for series in result:
            value = _number(series.get("value"))
            judged.append((_judge(value, q), value, series.get("metric", {})))
        judged.sort(key=lambda j: (-j[0].severity, -_badness(j[1], q.direction)))
        status = judged[0][0] if judged else Status.OK
        if judged:
            top_status, top_value, _ = judged[0]
            signals.append(
                Signal(
                    name=q.label,
                    value=_round(top_value),
                    unit=q.unit,
                    threshold=shown_threshold(query_rule(q), top_status),
                    status=top_status,
                )
            )
        lines = [
            f"{_series_name(m)} = {_round(v)}{q.unit} ({st.value})"
            for st, v, m in judged[: s.max_series]
        ]
        if len(judged) > s.max_series:
            lines.append(f"... and {len(judged) - s.max_series} more series")
        evidence.append(
            Evidence(
                kind="metric",
                title=f"{q.label}: {q.expr}",
                text="\n".join(lines) or "(no series: the query matched nothing)",
            )
        )
        said = []
        if status is not Status.OK:
            said.append(f"{q.label} = {_round(judged[0][1])}{q.unit} ({status.value})")
        onset = None
        if q.baseline_minutes:
            anomalous, onset = await self._score(api, q, s, end, signals, evidence)
            if anomalous and status is Status.OK:  # its ``_anomaly`` signal is degraded
                said.append(f"{q.label} far from its baseline")
        return status, said, onset

    async def _score(
        self,
        api: PrometheusApi,
        q: PromQuery,
        s: PrometheusSettings,
        end: datetime,
        signals: list[Signal],
        evidence: list[Evidence],
    ) -> tuple[bool, datetime | None]:
        """The incident window (``window_minutes`` up to ``end``) against the ``baseline_minutes``
        before it, per series; the most anomalous series speaks for the query."""
        assert q.baseline_minutes is not None
        split = end - timedelta(minutes=s.window_minutes)
        start = split - timedelta(minutes=q.baseline_minutes)
        best: tuple[float, bool, datetime | None, dict[str, str]] | None = None
        for series in (await api.query_range(q.expr, start, end, q.step_seconds))[:1000]:
            points = [(float(p[0]), _number(p)) for p in series.get("values", [])]
            baseline = [v for t, v in points if t < split.timestamp()]
            incident = [(t, v) for t, v in points if t >= split.timestamp()]
            score = score_series(baseline, [v for _, v in incident], q.direction)
            onset = (
                datetime.fromtimestamp(incident[score.onset_index][0], UTC)
                if score.onset_index is not None
                else None
            )
            if best is None or score.score > best[0]:
                best = (score.score, score.abnormal, onset, series.get("metric", {}))
        if best is None:
            return False, None
        score_value, abnormal, onset, metric = best
        name = f"{q.label}_anomaly"
        anomaly = Rule(name, "flag", on="abnormal")
        got = verdicts.assess(
            (anomaly,), {name: round(score_value, 2)}, facts={"abnormal": abnormal}
        )
        signals.extend(got.signals)
        evidence.append(
            Evidence(
                kind="metric",
                title=f"{q.label} against its baseline",
                text=f"{_series_name(metric)}: anomaly score {score_value:.2f}"
                + (f", abnormal since {onset:%H:%M:%S}" if onset else ", within its usual range"),
            )
        )
        return abnormal, onset


def _labels(alert: dict[str, Any]) -> dict[str, str]:
    return dict(alert.get("labels") or {})


def _annotations(alert: dict[str, Any]) -> dict[str, str]:
    return dict(alert.get("annotations") or {})


def _alert_line(alert: dict[str, Any]) -> str:
    labels = _labels(alert)
    name = labels.pop("alertname", "?")
    summary = _annotations(alert).get("summary", "")
    since = alert.get("activeAt", "")
    value = alert.get("value", "")
    text = f"{alert.get('state', '?')} {name}{_series_name(labels)} since {since} value={value}"
    return (text + (f": {summary}" if summary else ""))[:500]


def _series_name(metric: dict[str, str]) -> str:
    labels = {k: v for k, v in metric.items() if k != "__name__"}
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric.get('__name__', '')}{{{inner}}}"


def _number(pair: Any) -> float:
    """A sample ``[time, "value"]``'s value; Prometheus writes NaN and ±Inf as strings."""
    try:
        return float(pair[1])
    except (TypeError, ValueError, IndexError):
        return math.nan


def query_rule(q: PromQuery) -> Rule:
    """A query's thresholds as a verdict rule; its signal carries the threshold reached."""
    direction: verdicts.Direction = "below" if q.direction == "down" else "above"
    return Rule(q.label, direction, warn=q.warn, crit=q.crit, unit=q.unit, show="reached")


def _judge(value: float, q: PromQuery) -> Status:
    """One series' status. NaN is no sample (a ratio over no traffic): unknown where the
    query has a threshold, since it cannot vouch for the node."""
    return judge_value(query_rule(q), None if math.isnan(value) else value, None, {})


#: the alerts' signals: any alert firing is degraded; one of a critical severity, critical
ALERT_RULES: tuple[Rule, ...] = (
    Rule("alerts_firing", "flag", crit_on="critical_firing", warn=0),
    Rule("alerts_pending"),
)


def _badness(value: float, direction: Direction) -> float:
    if math.isnan(value):
        return -math.inf
    return value if direction == "up" else -value


def _round(value: float) -> float | str:
    return str(value) if math.isnan(value) or math.isinf(value) else round(value, 4)
