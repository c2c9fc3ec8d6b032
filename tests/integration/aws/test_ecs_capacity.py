"""ECS capacity against moto's server: the skill's capacity signals (hosts, interrupted
tasks, placement) and the placement actions, with the production gate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rootloop.actions import ecs_placement
from rootloop.actions.types import PlacementStep, SetCapacityProviderStrategy, SetPlacementStrategy
from rootloop.errors import ActionRefused
from rootloop.models import Status
from tests.integration.aws.conftest import run_check
from tests.integration.aws.test_ecs_actions import make_topology, seed

CLUSTER, SERVICE = "staging", "orders-api"


def host(aws: Any, zone: str) -> str:
    ec2 = aws.client("ec2")
    subnet = next(s for s in ec2.describe_subnets()["Subnets"] if s["AvailabilityZone"] == zone)
    inst = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"]
    )["Instances"][0]
    doc = json.dumps({"instanceId": inst["InstanceId"]})
    ci = aws.ecs.register_container_instance(cluster=CLUSTER, instanceIdentityDocument=doc)
    return str(ci["containerInstance"]["containerInstanceArn"])


async def read(aws_settings: dict[str, Any]) -> Any:
    settings = {**aws_settings, "cluster": CLUSTER, "service": SERVICE, "metrics": False}
    return await run_check("aws-ecs", "orders-ecs", settings)


async def test_a_terminated_host_taking_both_binpacked_tasks_is_reported(aws, aws_settings):
    seed(aws, desired=2)
    aws.ecs.update_service(
        cluster=CLUSTER, service=SERVICE, placementStrategy=[{"type": "binpack", "field": "memory"}]
    )
    a, _b = host(aws, "us-east-1a"), host(aws, "us-east-1b")
    tasks = aws.ecs.start_task(
        cluster=CLUSTER,
        taskDefinition="orders-api:2",
        containerInstances=[a, a],
        group=f"service:{SERVICE}",
    )["tasks"]
    for t in tasks:
        aws.ecs.stop_task(
            cluster=CLUSTER, task=t["taskArn"], reason="Host EC2 (instance i-a) terminated."
        )
    aws.ecs.deregister_container_instance(cluster=CLUSTER, containerInstance=a, force=True)
    f = await read(aws_settings)
    assert f.status is not Status.OK
    assert f.value("interrupted_tasks") == 2 and f.value("interrupted_on_one_host") == 2
    assert (
        f.value("placement_spreads") is False and f.value("placement_strategy") == "binpack(memory)"
    )


async def test_tasks_stopped_for_other_reasons_are_not_interruptions(aws, aws_settings):
    seed(aws, desired=1)
    aws.ecs.update_service(
        cluster=CLUSTER,
        service=SERVICE,
        placementStrategy=[{"type": "spread", "field": "instanceId"}],
    )
    a = host(aws, "us-east-1a")
    (t,) = aws.ecs.start_task(
        cluster=CLUSTER,
        taskDefinition="orders-api:2",
        containerInstances=[a],
        group=f"service:{SERVICE}",
    )["tasks"]
    aws.ecs.stop_task(
        cluster=CLUSTER, task=t["taskArn"], reason="Essential container in task exited"
    )
    f = await read(aws_settings)
    assert f.value("interrupted_tasks") == 0 and f.value("placement_spreads") is True


def test_placement_and_capacity_provider_actions_set_the_service_and_refuse_production(
    aws, moto_server, tmp_path
):
    seed(aws)
    aws.ecs.update_service(
        cluster=CLUSTER,
        service=SERVICE,
        capacityProviderStrategy=[{"capacityProvider": "spot", "weight": 1}],
    )
    topo = make_topology(tmp_path, moto_server.endpoint_url)
    spread = SetPlacementStrategy(
        target="orders-ecs",
        cluster=CLUSTER,
        service=SERVICE,
        strategy=(PlacementStep(type="spread", field="instanceId"),),
    )
    assert ecs_placement.apply(spread, aws, topo).ok
    base = SetCapacityProviderStrategy(
        target="orders-ecs", cluster=CLUSTER, service=SERVICE, base_provider="on-demand"
    )
    done = ecs_placement.apply(base, aws, topo)
    svc = aws.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    assert svc["placementStrategy"] == [{"type": "spread", "field": "instanceId"}]
    assert svc["capacityProviderStrategy"][0] == {
        "capacityProvider": "on-demand",
        "base": 1,
        "weight": 0,
    }
    assert "spot" in done.undo and ecs_placement.apply(base, aws, topo).no_op
    aws.ecs.tag_resource(resourceArn=svc["serviceArn"], tags=[{"key": "env", "value": "prod"}])
    with pytest.raises(ActionRefused):
        ecs_placement.apply(
            SetPlacementStrategy(
                target="orders-ecs",
                cluster=CLUSTER,
                service=SERVICE,
                strategy=(PlacementStep(type="binpack", field="memory"),),
            ),
            aws,
            topo,
        )
    after = aws.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    assert after["placementStrategy"] == [{"type": "spread", "field": "instanceId"}]
