"""ECS actions and the deploy waiter against moto's server, with the production gate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import rootloop
from rootloop import topology as topo
from rootloop.actions.ecs import apply, wait_stable
from rootloop.actions.types import (
    ForceDeployment,
    RollbackTaskDefinition,
    ScaleService,
    SetEnvVar,
    SetTaskResources,
)
from rootloop.errors import ActionRefused
from rootloop.platforms.aws.session import AwsClients

MAP = """
service: orders
environment: staging
downstream:
  - name: orders-ecs
    type: ecs
    skill: aws-ecs
    cluster: {cluster}
    service: {service}
    region: us-east-1
    endpoint_url: {endpoint}
"""


def make_topology(
    tmp_path: Path, endpoint: str, cluster: str = "staging", service: str = "orders-api"
) -> topo.Topology:
    path = tmp_path / "rootloop.yaml"
    path.write_text(MAP.format(cluster=cluster, service=service, endpoint=endpoint))
    return rootloop.load_map(path)


def seed(
    aws: AwsClients,
    cluster: str = "staging",
    service: str = "orders-api",
    service_tags: list[dict[str, str]] | None = None,
    desired: int = 2,
) -> dict[str, Any]:
    aws.ecs.create_cluster(clusterName=cluster)
    for image in ("orders:1.3", "orders:1.4"):
        aws.ecs.register_task_definition(
            family="orders-api",
            memory="512",
            cpu="256",
            containerDefinitions=[
                {
                    "name": "api",
                    "image": image,
                    "memory": 512,
                    "environment": [{"name": "POOL_SIZE", "value": "5"}],
                }
            ],
            tags=[{"key": "team", "value": "orders"}],
        )
    return aws.ecs.create_service(
        cluster=cluster,
        serviceName=service,
        taskDefinition="orders-api:2",
        desiredCount=desired,
        tags=service_tags or [],
    )["service"]


def current_td(aws: AwsClients, cluster: str = "staging") -> dict[str, Any]:
    svc = aws.ecs.describe_services(cluster=cluster, services=["orders-api"])["services"][0]
    return aws.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]


def test_set_memory_registers_a_new_revision_and_deploys_it(aws, moto_server, tmp_path):
    seed(aws)
    t = make_topology(tmp_path, moto_server.endpoint_url)
    action = SetTaskResources(
        target="orders-ecs", cluster="staging", service="orders-api", memory=1024
    )
    result = apply(action, aws, t)
    td = current_td(aws)
    assert td["revision"] == 3 and td["memory"] == "1024"
    assert td["containerDefinitions"][0]["memory"] == 1024  # the hard limit follows
    assert td["containerDefinitions"][0]["image"] == "orders:1.4"  # nothing else changed
    assert result.details["previous_task_definition"].endswith("orders-api:2")
    assert "orders-api:2" in result.undo and "512 -> 1024" in result.changed
    tags = aws.ecs.list_tags_for_resource(resourceArn=td["taskDefinitionArn"])["tags"]
    assert {"key": "team", "value": "orders"} in tags


def test_set_env_var_changes_only_that_variable(aws, moto_server, tmp_path):
    seed(aws)
    t = make_topology(tmp_path, moto_server.endpoint_url)
    apply(
        SetEnvVar(
            target="orders-ecs",
            cluster="staging",
            service="orders-api",
            name="POOL_SIZE",
            value="20",
        ),
        aws,
        t,
    )
    result = apply(
        SetEnvVar(
            target="orders-ecs",
            cluster="staging",
            service="orders-api",
            name="API_TOKEN",
            value="s3cr3t-value",
        ),
        aws,
        t,
    )
    env = {e["name"]: e["value"] for e in current_td(aws)["containerDefinitions"][0]["environment"]}
    assert env == {"POOL_SIZE": "20", "API_TOKEN": "s3cr3t-value"}
    assert "s3cr3t-value" not in result.changed  # secret-looking values are masked


def test_rollback_goes_to_the_previous_revision(aws, moto_server, tmp_path):
    seed(aws)
    t = make_topology(tmp_path, moto_server.endpoint_url)
    result = apply(
        RollbackTaskDefinition(target="orders-ecs", cluster="staging", service="orders-api"), aws, t
    )
    assert current_td(aws)["revision"] == 1
    assert result.details["previous_task_definition"].endswith("orders-api:2")
    assert "orders-api:2" in result.undo


def test_force_deployment_starts_a_new_deployment(aws, moto_server, tmp_path):
    svc = seed(aws)
    t = make_topology(tmp_path, moto_server.endpoint_url)
    before = svc["deployments"][0]["id"]
    result = apply(
        ForceDeployment(target="orders-ecs", cluster="staging", service="orders-api"), aws, t
    )
    after = aws.ecs.describe_services(cluster="staging", services=["orders-api"])["services"][0][
        "deployments"
    ][0]["id"]
    assert after != before and result.ok


def test_scale_changes_desired_count_and_says_how_to_undo(aws, moto_server, tmp_path):
    seed(aws)
    t = make_topology(tmp_path, moto_server.endpoint_url)
    result = apply(
        ScaleService(target="orders-ecs", cluster="staging", service="orders-api", desired=4),
        aws,
        t,
    )
    svc = aws.ecs.describe_services(cluster="staging", services=["orders-api"])["services"][0]
    assert svc["desiredCount"] == 4
    assert "--desired-count 2" in result.undo


def test_production_tag_refuses_before_any_change(aws, moto_server, tmp_path):
    seed(aws, service_tags=[{"key": "environment", "value": "production"}])
    t = make_topology(tmp_path, moto_server.endpoint_url)
    with pytest.raises(ActionRefused) as err:
        apply(
            SetTaskResources(
                target="orders-ecs", cluster="staging", service="orders-api", memory=2048
            ),
            aws,
            t,
        )
    assert err.value.gate == "production" and "environment=production" in err.value.reason
    assert current_td(aws)["revision"] == 2  # nothing registered, nothing deployed
    assert len(aws.ecs.list_task_definitions()["taskDefinitionArns"]) == 2


def test_production_name_refuses(aws, moto_server, tmp_path):
    seed(aws, cluster="prod-main")
    t = make_topology(tmp_path, moto_server.endpoint_url, cluster="prod-main")
    with pytest.raises(ActionRefused) as err:
        apply(
            ScaleService(target="orders-ecs", cluster="prod-main", service="orders-api", desired=0),
            aws,
            t,
        )
    assert "prod-main" in err.value.reason
    svc = aws.ecs.describe_services(cluster="prod-main", services=["orders-api"])["services"][0]
    assert svc["desiredCount"] == 2


def test_wait_stable_reports_progress_and_stability(aws):
    seed(aws)
    seen = []
    r = wait_stable(aws, "staging", "orders-api", timeout=5, poll=0.05, on_progress=seen.append)
    assert r.stable, r.reason
    assert seen and seen[-1].running == seen[-1].desired == 2


def test_wait_stable_times_out_when_tasks_are_missing(aws):
    seed(aws, desired=3)  # the emulator runs 2 of 3
    seen, slept = [], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    r = wait_stable(
        aws, "staging", "orders-api", timeout=0.5, poll=0.05, on_progress=seen.append, sleep=sleep
    )
    assert not r.stable and "not stable after 0.5s" in r.reason
    # however fast or slow the machine: every poll reports, and polls are a poll apart
    assert seen and r.polls == len(seen) == len(slept) + 1
    assert set(slept) == {0.05}
    assert all((p.desired, p.running, p.pending) == (3, 2, 1) for p in seen)
    assert r.last == seen[-1]


def test_wait_stable_fails_on_a_task_stopped_after_the_deploy(aws):
    svc = seed(aws, desired=3)  # a rollout still in progress (2 of 3 running)
    polls = []

    def progress(p):
        polls.append(p)
        if len(polls) == 1:  # a task of the new deployment dies while we wait
            task = aws.ecs.run_task(
                cluster="staging",
                taskDefinition="orders-api:2",
                launchType="FARGATE",
                group="service:orders-api",
                startedBy=svc["deployments"][0]["id"],
            )["tasks"][0]
            aws.ecs.stop_task(
                cluster="staging",
                task=task["taskArn"],
                reason="OutOfMemoryError: Container killed due to memory usage",
            )

    r = wait_stable(aws, "staging", "orders-api", timeout=5, poll=0.05, on_progress=progress)
    assert not r.stable and "OutOfMemoryError" in r.reason
    assert r.last is not None and r.last.new_stopped == 1
