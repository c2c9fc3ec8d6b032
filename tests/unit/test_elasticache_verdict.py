"""aws-elasticache's cluster status as a verdict rule: available is ok, a transition
degraded, a failed or deleted cluster critical — with the metrics judged as before."""

from __future__ import annotations

import pytest

from rootloop.models import Status
from rootloop.models.nodes import Node
from rootloop.skills.aws_elasticache import CacheState, ElastiCacheSkill
from rootloop.skills.cloudwatch_metrics import MetricAssessment, MetricSpec


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        ("available", Status.OK),
        ("modifying", Status.DEGRADED),
        ("snapshotting", Status.DEGRADED),
        ("create-failed", Status.CRITICAL),
        ("deleted", Status.CRITICAL),
    ],
)
@pytest.mark.parametrize("evicted", [0.0, 0.99, 1.0, 3.0])  # evictions_warn 1
def test_cluster_status_and_evictions(cluster, expected, evicted):
    skill = ElastiCacheSkill()
    s = skill.Settings.model_validate({"cluster_id": "cache"})
    node = Node(
        name="cache",
        type="cache",
        skill="aws-elasticache",
        role="downstream",
        component="cache",
        service="svc",
        timeout=5,
        settings=s,
    )
    evictions = MetricAssessment(
        spec=MetricSpec(namespace="AWS/ElastiCache", name="Evictions", label="evictions"),
        incident=[evicted],
    )
    st = CacheState(
        status=cluster, engine="redis", node_type="t3", members=["a"], metrics=[evictions]
    )
    f = skill.judge(node, s, st)
    assert f.signal("cluster_status").status is expected
    ev = f.signal("evictions")
    assert ev.value == evicted
    ev_status = Status.DEGRADED if evicted >= s.evictions_warn else Status.OK
    assert ev.status is ev_status
    assert f.status is max(expected, ev_status, key=lambda x: x.severity)
