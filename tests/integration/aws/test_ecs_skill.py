"""aws-ecs against moto's server: an OOM-killed service must be found as such."""

from __future__ import annotations

from typing import Any

from rootloop.models import Status
from rootloop.platforms.aws.session import AwsClients
from tests.integration.aws.conftest import run_check

OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"


def seed_service(aws: AwsClients, desired: int = 2, memory: str = "512") -> dict[str, Any]:
    aws.ecs.create_cluster(clusterName="staging")
    aws.ecs.register_task_definition(
        family="orders-api",
        memory=memory,
        cpu="256",
        containerDefinitions=[
            {
                "name": "api",
                "image": "orders:1.4",
                "memory": int(memory),
                "environment": [
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "DB_PASSWORD", "value": "hunter2-secret"},
                ],
            }
        ],
    )
    return aws.ecs.create_service(
        cluster="staging",
        serviceName="orders-api",
        taskDefinition="orders-api",
        desiredCount=desired,
    )["service"]


def stop_task(aws: AwsClients, svc: dict[str, Any], reason: str, group: str = "") -> None:
    task = aws.ecs.run_task(
        cluster="staging",
        taskDefinition="orders-api",
        group=group or "service:orders-api",
        launchType="FARGATE",
        startedBy="ecs-svc/other" if group else svc["deployments"][0]["id"],
    )["tasks"][0]
    aws.ecs.stop_task(cluster="staging", task=task["taskArn"], reason=reason)


async def test_oom_killed_tasks_are_found_with_exit_code_and_memory(aws, aws_settings):
    svc = seed_service(aws)
    stop_task(aws, svc, OOM_REASON)
    stop_task(aws, svc, OOM_REASON)
    stop_task(aws, svc, "Task failed ELB health checks", group="service:other-svc")

    f = await run_check(
        "aws-ecs", "orders-ecs", {**aws_settings, "cluster": "staging", "service": "orders-api"}
    )

    assert f.status is Status.CRITICAL, f.summary
    assert f.value("oom_kills") == 2  # the other service's stopped task is not counted
    assert f.value("restarts") == 2
    assert f.value("exit_code") == 137
    assert f.value("task_memory") == 512
    assert "OOM-killed" in f.summary and "512" in f.summary
    stopped = next(e for e in f.evidence if e.title.startswith("stopped tasks"))
    assert OOM_REASON in stopped.text and "exit 137" in stopped.text
    config = next(e for e in f.evidence if e.kind == "config")
    assert "LOG_LEVEL=info" in config.text
    assert "hunter2-secret" not in f.model_dump_json()  # secret env values masked


async def test_healthy_service_is_ok(aws, aws_settings):
    seed_service(aws, desired=2)
    f = await run_check(
        "aws-ecs", "orders-ecs", {**aws_settings, "cluster": "staging", "service": "orders-api"}
    )
    assert f.status is Status.OK, f.summary
    assert f.value("running_count") == 2 and f.value("oom_kills") == 0


async def test_service_short_of_tasks_is_degraded(aws, aws_settings):
    seed_service(aws, desired=3)  # the emulator runs 2 of 3: rollout IN_PROGRESS
    f = await run_check(
        "aws-ecs", "orders-ecs", {**aws_settings, "cluster": "staging", "service": "orders-api"}
    )
    assert f.status is Status.DEGRADED
    assert f.value("pending_count") == 1 and f.value("rollout_state") == "IN_PROGRESS"


async def test_crash_exit_code_read_from_reason(aws, aws_settings):
    svc = seed_service(aws)
    stop_task(aws, svc, "Essential container in task exited: exit code 1")
    f = await run_check(
        "aws-ecs", "orders-ecs", {**aws_settings, "cluster": "staging", "service": "orders-api"}
    )
    assert f.value("exit_code") == 1 and f.value("oom_kills") == 0
    assert f.status is Status.DEGRADED


async def test_missing_service_is_critical(aws, aws_settings):
    aws.ecs.create_cluster(clusterName="staging")
    f = await run_check(
        "aws-ecs", "orders-ecs", {**aws_settings, "cluster": "staging", "service": "nope"}
    )
    assert f.status is Status.CRITICAL and "not found" in f.summary
    exists = f.signal("service_exists")
    assert exists.value is False and exists.status is Status.CRITICAL


def register(aws: AwsClients, sha: str) -> None:
    aws.ecs.register_task_definition(
        family="orders-api",
        memory="512",
        cpu="256",
        containerDefinitions=[
            {
                "name": "api",
                "image": f"orders:{sha[:7]}",
                "memory": 512,
                "environment": [{"name": "GIT_SHA", "value": sha}],
            }
        ],
    )


async def test_the_deploys_changed_files_come_as_evidence_from_the_repository(
    aws, aws_settings, tmp_path
):
    """The ECS check reads which commit runs and which ran before from the task
    definitions, and (given the repository) puts the files that deploy changed into its
    finding, for the bad-deploy signature to read without running git itself."""
    from rootloop.models.deploys import DeployDiff
    from tests.unit.test_signatures_preconditions import history

    repo, _root, first, bad = history(tmp_path)
    aws.ecs.create_cluster(clusterName="staging")
    register(aws, first)
    register(aws, bad)
    aws.ecs.create_service(
        cluster="staging", serviceName="orders-api", taskDefinition="orders-api:2", desiredCount=1
    )
    settings = {**aws_settings, "cluster": "staging", "service": "orders-api"}

    f = await run_check("aws-ecs", "orders-ecs", {**settings, "repo_path": str(repo)})
    assert f.value("deployed_commit") == bad and f.value("previous_commit") == first
    [diff] = [d for e in f.evidence if (d := DeployDiff.from_evidence(e)) is not None]
    assert (diff.previous, diff.commit, diff.files) == (first, bad, ("app/receipts.py",))

    without_repo = await run_check("aws-ecs", "orders-ecs", settings)
    assert not [e for e in without_repo.evidence if e.kind == "diff"]
