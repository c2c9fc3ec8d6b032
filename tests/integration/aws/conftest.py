"""Helpers for the AWS tests: nodes pointed at the moto server, metric seeding."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rootloop.models import Finding
from rootloop.platforms.aws.session import AwsClients
from rootloop.skills import registry
from rootloop.skills.base import CheckContext, Node
from rootloop.sweep import check_node


def make_node(skill: str, name: str, settings: dict[str, Any], timeout: float = 20.0) -> Node:
    parsed = registry.get(skill).Settings.model_validate(settings)
    return Node(
        name=name,
        type="aws",
        skill=skill,
        role="downstream",
        component=name,
        service="orders",
        timeout=timeout,
        settings=parsed,
    )


async def run_check(
    skill: str, name: str, settings: dict[str, Any], timeout: float = 20.0
) -> Finding:
    """Through the sweep's own per-node path: timeout, error capture, redaction."""
    return await check_node(make_node(skill, name, settings, timeout), CheckContext())


def put_series(
    aws: AwsClients,
    namespace: str,
    name: str,
    dims: dict[str, str],
    values: Sequence[float],
    *,
    end_minutes_ago: float = 0.5,
    unit: str = "None",
) -> None:
    """One datapoint a minute, the last ``end_minutes_ago`` minutes ago, as AWS publishes."""
    now = datetime.now(UTC)
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            "Timestamp": now - timedelta(minutes=end_minutes_ago + (len(values) - 1 - i)),
            "Value": float(v),
            "Unit": unit,
        }
        for i, v in enumerate(values)
    ]
    for i in range(0, len(data), 500):
        aws.cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[i : i + 500])


@pytest.fixture
def seed_metric(aws: AwsClients):
    def seed(
        namespace: str,
        name: str,
        dims: dict[str, str],
        baseline: Sequence[float],
        incident: Sequence[float],
        unit: str = "None",
    ) -> None:
        """``baseline``: the hour before the 15-minute window; ``incident``: inside it."""
        put_series(aws, namespace, name, dims, baseline, end_minutes_ago=16.5, unit=unit)
        put_series(aws, namespace, name, dims, incident, end_minutes_ago=0.5, unit=unit)

    return seed
