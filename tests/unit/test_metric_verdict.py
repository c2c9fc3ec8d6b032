"""A CloudWatch metric's thresholds are judged by the one verdict rule (``above``, or
``below`` when low is bad) exactly as the metric module's own judge did: the old
function is written out here and compared over directions, thresholds and values at,
around and past them."""

from __future__ import annotations

import itertools

import pytest

from rootloop.models import Status
from rootloop.skills.cloudwatch_metrics import MetricSpec, _judge


def old_judge(spec: MetricSpec, value: float) -> Status:
    low_is_bad = spec.direction == "down"
    crit, warn = spec.crit, spec.warn
    if crit is not None and (value <= crit if low_is_bad else value >= crit):
        return Status.CRITICAL
    if warn is not None and (value <= warn if low_is_bad else value >= warn):
        return Status.DEGRADED
    return Status.OK


THRESHOLDS = [(None, None), (10.0, None), (None, 20.0), (10.0, 20.0), (20.0, 10.0), (0.0, 0.0)]
VALUES = [-1.0, 0.0, 5.0, 9.999, 10.0, 10.001, 15.0, 20.0, 20.5, 1e9]


@pytest.mark.parametrize(
    ("direction", "thresholds"), list(itertools.product(["up", "down", "both"], THRESHOLDS))
)
def test_the_rule_judges_a_metric_as_the_old_function_did(direction, thresholds):
    warn, crit = thresholds
    spec = MetricSpec(namespace="N", name="M", direction=direction, warn=warn, crit=crit)
    for value in VALUES:
        assert _judge(spec, value) is old_judge(spec, value), value


def _found(*metrics: tuple[str, list[float], Status]):
    from rootloop.skills.cloudwatch_metrics import MetricAssessment

    return [
        MetricAssessment(spec=MetricSpec(namespace="N", name=n), incident=v, status=st)
        for n, v, st in metrics
    ]


def _summarize(found):
    from rootloop.models.nodes import Node
    from rootloop.skills.cloudwatch_metrics import CloudWatchMetricsSkill

    skill = CloudWatchMetricsSkill()
    s = skill.Settings.model_validate({"metrics": [{"namespace": "N", "name": "A"}]})
    node = Node(name="m", type="metrics", skill="cloudwatch-metrics", role="downstream",
                component="m", service="svc", timeout=5, settings=s)  # fmt: skip
    return skill.summarize(node, found)


def test_a_named_metric_without_datapoints_is_unknown_not_ok():
    """Fixed: it was reported ok beside metrics that had data (a wrong dimension, say,
    passed silently). Now its signal is unknown, and so is a finding otherwise ok."""
    f = _summarize(_found(("A", [1.0], Status.OK), ("B", [], Status.OK)))
    assert f.signal("A").status is Status.OK
    assert f.signal("B").status is Status.UNKNOWN and f.signal("B").value is None
    assert f.status is Status.UNKNOWN and "no datapoints for B" in f.summary


def test_a_bad_metric_stays_the_verdict_beside_one_without_data():
    f = _summarize(_found(("A", [99.0], Status.CRITICAL), ("B", [], Status.OK)))
    assert f.status is Status.CRITICAL
    f = _summarize(_found(("A", [1.0], Status.OK), ("B", [2.0], Status.OK)))
    assert f.status is Status.OK and "no datapoints" not in f.summary
