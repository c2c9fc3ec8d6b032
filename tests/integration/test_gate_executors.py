"""Every executor refuses on the real resource right before its side effect.

AWS resources live on moto's server (real boto3 over loopback), PostgreSQL and Redis are
the real servers of the fixtures. Each test checks on the resource itself that nothing
changed, not only that an exception was raised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import yaml

import rootloop
from rootloop import topology
from rootloop.actions import aws_lambda, ecs
from rootloop.actions.datastores import (
    apply_set_redis_policy,
    apply_terminate_backend,
    run_migration,
)
from rootloop.actions.types import (
    ForceDeployment,
    RollbackTaskDefinition,
    RunMigration,
    ScaleService,
    SetEnvVar,
    SetFunctionEnv,
    SetRedisPolicy,
    SetTaskResources,
    TerminateBackend,
)
from rootloop.errors import ActionRefused
from rootloop.platforms.aws.session import AwsConfig, clear_cache, clients_for
from tests.integration.aws.test_ecs_actions import current_td, seed
from tests.integration.aws.test_lambda_elasticache import make_function

REGION = "us-east-1"
MOTO_ACCOUNT = "123456789012"  # moto's default account


def write(tmp_path: Path, endpoint: str, **policy: Any) -> topology.Topology:
    aws = {"region": REGION, "endpoint_url": endpoint}
    data: dict[str, Any] = {
        "service": "orders",
        "environment": "staging",
        "downstream": [
            {
                "name": "orders-api",
                "type": "ecs",
                "skill": "aws-ecs",
                "cluster": "staging",
                "service": "orders-api",
                **aws,
            },
            {
                "name": "orders-worker",
                "type": "lambda",
                "skill": "aws-lambda",
                "function_name": "orders-worker",
                **aws,
            },
        ],
    }
    if policy:
        data["policy"] = policy
    path = tmp_path / "rootloop.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return rootloop.load_map(path, env={})


ECS_ACTIONS = [
    SetTaskResources(target="orders-api", cluster="staging", service="orders-api", memory=1024),
    SetEnvVar(target="orders-api", cluster="staging", service="orders-api", name="A", value="1"),
    RollbackTaskDefinition(target="orders-api", cluster="staging", service="orders-api"),
    ForceDeployment(target="orders-api", cluster="staging", service="orders-api"),
    ScaleService(target="orders-api", cluster="staging", service="orders-api", desired=0),
]


def ecs_state(aws) -> tuple[int, int, int]:
    svc = aws.ecs.describe_services(cluster="staging", services=["orders-api"])["services"][0]
    revisions = len(aws.ecs.list_task_definitions()["taskDefinitionArns"])
    return current_td(aws)["revision"], svc["desiredCount"], revisions


@pytest.mark.parametrize("action", ECS_ACTIONS, ids=lambda a: a.kind)
@pytest.mark.parametrize(
    "where", ["service", "cluster", "task-definition"], ids=lambda w: f"tag-on-{w}"
)
def test_every_ecs_action_refuses_a_production_tagged_resource(
    aws, moto_server, tmp_path, action, where
):
    seed(aws)
    svc = aws.ecs.describe_services(cluster="staging", services=["orders-api"])["services"][0]
    arn = {
        "service": svc["serviceArn"],
        "cluster": svc["clusterArn"],
        "task-definition": svc["taskDefinition"],
    }[where]
    aws.ecs.tag_resource(resourceArn=arn, tags=[{"key": "Environment", "value": "Production"}])
    before = ecs_state(aws)
    with pytest.raises(ActionRefused) as err:
        ecs.apply(action, aws, write(tmp_path, moto_server.endpoint_url))
    assert err.value.gate == "production" and "Environment=Production" in err.value.reason
    assert ecs_state(aws) == before


@pytest.mark.parametrize("tag", [("env", "prod"), ("ENV", "PROD"), ("stage", "live")])
def test_the_lambda_executor_refuses_a_production_tagged_function(aws, moto_server, tmp_path, tag):
    make_function(aws)
    fn = aws.lambda_.get_function_configuration(FunctionName="orders-worker")
    aws.lambda_.tag_resource(Resource=fn["FunctionArn"], Tags={tag[0]: tag[1]})
    action = SetFunctionEnv(
        target="orders-worker", function_name="orders-worker", name="POOL", value="2"
    )
    with pytest.raises(ActionRefused):
        aws_lambda.apply(action, aws, write(tmp_path, moto_server.endpoint_url))
    after = aws.lambda_.get_function_configuration(FunctionName="orders-worker")
    assert "POOL" not in after.get("Environment", {}).get("Variables", {})


def test_an_account_not_listed_as_lower_is_refused_before_any_change(aws, moto_server, tmp_path):
    seed(aws)
    before = ecs_state(aws)
    topo = write(tmp_path, moto_server.endpoint_url, aws_accounts=["111111111111"])
    with pytest.raises(ActionRefused) as err:
        ecs.apply(ECS_ACTIONS[0], aws, topo)
    assert MOTO_ACCOUNT in err.value.reason and "111111111111" in err.value.reason
    assert ecs_state(aws) == before
    listed = write(tmp_path, moto_server.endpoint_url, aws_accounts=[MOTO_ACCOUNT])
    assert ecs.apply(ECS_ACTIONS[0], aws, listed).ok  # the listed account acts
    assert ecs_state(aws)[0] == before[0] + 1


def test_sts_that_cannot_answer_refuses(moto_server, tmp_path, closed_port):
    clear_cache()
    dead = clients_for(
        AwsConfig(
            region=REGION,
            endpoint_url=f"http://127.0.0.1:{closed_port}",
            max_attempts=1,
            connect_timeout=2,
        )
    )
    topo = write(tmp_path, moto_server.endpoint_url, aws_accounts=[MOTO_ACCOUNT])
    with pytest.raises(ActionRefused) as err:
        ecs.apply(ECS_ACTIONS[3], dead, topo)
    assert "could not confirm the AWS account" in err.value.reason


def test_an_ecs_action_on_another_nodes_service_is_refused(aws, moto_server, tmp_path):
    seed(aws)
    seed(aws, service="billing-api")
    action = ScaleService(target="orders-api", cluster="staging", service="billing-api", desired=0)
    with pytest.raises(ActionRefused) as err:
        ecs.apply(action, aws, write(tmp_path, moto_server.endpoint_url))
    assert err.value.gate == "target"
    svc = aws.ecs.describe_services(cluster="staging", services=["billing-api"])["services"][0]
    assert svc["desiredCount"] == 2


# -- PostgreSQL and Redis --------------------------------------------------------------------


def datastore_map(tmp_path: Path, environment: str, dsn: str, url: str) -> topology.Topology:
    data = {
        "service": "cart",
        "environment": environment,
        "downstream": [
            {"name": "postgresql", "type": "db", "skill": "postgres", "dsn": dsn},
            {"name": "redis", "type": "cache", "skill": "redis", "url": url},
        ],
    }
    path = tmp_path / "cart.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return rootloop.load_map(path, env={})


def policy_of(url: str) -> str:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return client.config_get("maxmemory-policy")["maxmemory-policy"]
    finally:
        client.close()


@pytest.mark.parametrize("environment", ["production", "Prod-EU", "qa-live"])
def test_the_redis_executor_refuses_outside_a_lower_environment(
    tmp_path, redis_url, pg_dsn, environment
):
    before = policy_of(redis_url)
    topo = datastore_map(tmp_path, environment, pg_dsn, redis_url)
    action = SetRedisPolicy(target="redis", policy="allkeys-random")
    with pytest.raises(ActionRefused):
        apply_set_redis_policy(action, redis_url, topo)
    assert policy_of(redis_url) == before


def test_the_postgres_executors_refuse_a_database_named_as_production(
    tmp_path, pg_server, redis_url
):
    name = "payments_prod"
    admin = pg_server.dsn_for("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    dsn = pg_server.dsn_for(name)
    try:
        # the map names the node 'postgresql' in staging; only the live server says prod
        topo = datastore_map(tmp_path, "staging", dsn, redis_url)
        with psycopg.connect(dsn, autocommit=True, application_name="victim") as victim:
            with pytest.raises(ActionRefused) as err:
                apply_terminate_backend(
                    TerminateBackend(target="postgresql", application_name="victim"), dsn, topo
                )
            assert "payments_prod" in err.value.reason
            assert victim.execute("SELECT 1").fetchone() == (1,)  # still connected
        migration = RunMigration(target="postgresql", name="m", sql="CREATE TABLE t (a int)")
        with pytest.raises(ActionRefused):
            run_migration(migration, dsn, topo)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT to_regclass('t')").fetchone() == (None,)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
