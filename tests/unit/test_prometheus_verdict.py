"""prometheus's verdicts as rules: a query's series and the alerts are judged by the one
judge (``rootloop.skills.verdicts``) as the hand-written verdicts did — written out here
and compared over directions, thresholds, values at and around them, and alert mixes.

One deliberate change: a series whose value is NaN (no sample: e.g. a ratio over no
traffic) was ``ok``; it is ``unknown`` now, where the query has a threshold to judge."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from rootloop.models import Status
from rootloop.models.nodes import Node
from rootloop.skills.prometheus import PrometheusSettings, PrometheusSkill, PromQuery, _judge

OK, DEG, CRIT, UNKNOWN = Status.OK, Status.DEGRADED, Status.CRITICAL, Status.UNKNOWN


def old_judge(value: float, q: PromQuery) -> Status:
    if math.isnan(value):
        return OK  # no sample is no evidence
    bad = value if q.direction == "up" else -value
    crit = None if q.crit is None else (q.crit if q.direction == "up" else -q.crit)
    warn = None if q.warn is None else (q.warn if q.direction == "up" else -q.warn)
    if crit is not None and bad >= crit:
        return CRIT
    if warn is not None and bad >= warn:
        return DEG
    return OK


THRESHOLDS = [(None, None), (10.0, None), (None, 20.0), (10.0, 20.0), (20.0, 10.0)]
VALUES = [-math.inf, -5.0, 0.0, 9.99, 10.0, 10.01, 19.99, 20.0, 25.0, math.inf, math.nan]


@pytest.mark.parametrize(
    ("direction", "thresholds"), list(itertools.product(["up", "down"], THRESHOLDS))
)
def test_a_series_is_judged_as_before_and_nan_is_unknown(direction, thresholds):
    warn, crit = thresholds
    q = PromQuery(expr="x", label="x", direction=direction, warn=warn, crit=crit)
    for value in VALUES:
        want = old_judge(value, q)
        if math.isnan(value) and (warn is not None or crit is not None):
            want = UNKNOWN  # deliberate: no sample cannot vouch for the node
        assert _judge(value, q) is want, value


class FakeApi:
    def __init__(self, alerts):
        self._alerts = alerts

    async def alerts(self):
        return self._alerts


def alert(state: str, severity: str | None, service: str = "orders") -> dict:
    labels = {"alertname": f"A-{state}-{severity}", "service": service}
    if severity is not None:
        labels["severity"] = severity
    return {"state": state, "labels": labels, "annotations": {}}


KINDS = [("firing", "critical"), ("firing", "warning"), ("firing", None), ("pending", "page"),
         ("firing", "page"), ("inactive", "critical")]  # fmt: skip


@pytest.mark.parametrize("n", [0, 1, 2])
def test_the_alerts_are_judged_as_before(n):
    s = PrometheusSettings(url="http://127.0.0.1:9")
    node = Node(name="prom", type="prometheus", skill="prometheus", role="downstream",
                component="prom", service="svc", timeout=5, settings=s)  # fmt: skip
    for mix in itertools.combinations_with_replacement(KINDS, n):
        alerts = [alert(state, sev) for state, sev in mix]
        firing = [a for a in alerts if a["state"] == "firing"]
        critical = [a for a in firing if a["labels"].get("severity") in s.critical_severities]
        want = CRIT if critical else DEG if firing else OK
        signals, evidence, suspects = [], [], []
        status, _ = asyncio.run(
            PrometheusSkill()._alerts(FakeApi(alerts), s, node, signals, evidence, suspects)
        )
        fired = next(x for x in signals if x.name == "alerts_firing")
        assert (status, fired.status, fired.threshold) == (want, want, 0), mix
        assert next(x for x in signals if x.name == "alerts_pending").status is OK
