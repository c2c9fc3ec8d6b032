"""The lab's AWS side: moto's server in this process, and the resources the lab defines.

moto runs inside the supervisor (``ThreadedMotoServer``: a real HTTP server on
127.0.0.1, the same one ``moto_server`` runs) because the supervisor plays the
part of the ECS agent and the Lambda poller: it records what only an agent
knows — a container's exit code, a service's running count — directly in the
emulator's state, which the API then serves like AWS would.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from rootloop_lab.layout import (
    ACCESS_KEY,
    ACCOUNT,
    CLUSTER,
    DLQ,
    FUNCTION,
    QUEUE,
    REGION,
    SECRET_KEY,
    LabState,
)

BOTO = Config(connect_timeout=3, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"})


def aws_env(endpoint: str) -> dict[str, str]:
    """The environment every lab process (and rootloop against the lab) uses for AWS."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }


@functools.lru_cache(maxsize=128)
def client(service: str, endpoint: str) -> Any:
    """One boto3 client per service and endpoint in a process. Building one reads
    botocore's endpoint and service models (a third of a second each on a busy 2-core
    machine), which dominated rebuilding the lab's resources; boto3 clients are safe to
    share between threads."""
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    ).client(service, endpoint_url=endpoint, config=BOTO)


class Emulator:
    """moto's threaded server on loopback, plus handles on its backends."""

    def __init__(self, port: int) -> None:
        from moto.server import ThreadedMotoServer

        os.environ.update(aws_env(f"http://127.0.0.1:{port}"))
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()
        self.port = self.server.get_host_and_port()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint

    @property
    def ecs(self) -> Any:
        from moto.ecs.models import ecs_backends

        return ecs_backends[ACCOUNT][REGION]

    @property
    def sqs(self) -> Any:
        from moto.sqs.models import sqs_backends

        return sqs_backends[ACCOUNT][REGION]

    @property
    def lambda_(self) -> Any:
        from moto.awslambda.models import lambda_backends

        return lambda_backends[ACCOUNT][REGION]

    def stop(self) -> None:
        self.server.stop()


@dataclass
class ServiceSpec:
    name: str
    image: str
    memory: int
    env: dict[str, str]


def service_specs(state: LabState, sha: str) -> list[ServiceSpec]:
    p = state.ports
    return [
        ServiceSpec(
            "payments-api",
            "lab/payments-api:latest",
            256,
            {
                "PORT": str(p.payments_api),
                "PG_DSN": state.pg_dsn("payments", application_name="payments-api"),
                "REDIS_URL": state.redis_url,
                "QUEUE_URL": state.queue_url,
                "NOTIFY_URL": state.url("notification-svc"),
                "GIT_SHA": sha,
                "BATCH_INTERVAL": "2",
                "BACKPRESSURE_DEPTH": "100",
            },
        ),
        ServiceSpec(
            "api-gateway",
            "lab/api-gateway:latest",
            128,
            {"PORT": str(p.api_gateway), "UPSTREAM_URL": state.url("payments-api")},
        ),
        ServiceSpec(
            "frontend-app",
            "lab/frontend-app:latest",
            128,
            {"PORT": str(p.frontend_app), "GATEWAY_URL": state.url("api-gateway")},
        ),
        ServiceSpec(
            "notification-svc",
            "lab/notification-svc:latest",
            128,
            {"PORT": str(p.notification_svc)},
        ),
    ]


def container_definition(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "image": spec.image,
        "memory": spec.memory,
        "essential": True,
        "environment": [{"name": k, "value": v} for k, v in spec.env.items()],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": f"/ecs/{spec.name}",
                "awslogs-region": REGION,
                "awslogs-stream-prefix": "ecs",
                "awslogs-datetime-format": "%Y-%m-%d %H:%M:%S",
            },
        },
    }


def create_resources(state: LabState, sha: str) -> LabState:
    """Cluster, services, queues, the function and its mapping, log groups."""
    ep = state.endpoint_url
    ecs, lam, logs = (client(s, ep) for s in ("ecs", "lambda", "logs"))
    iam, ec2 = client("iam", ep), client("ec2", ep)
    ecs.create_cluster(clusterName=CLUSTER)
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    for spec in service_specs(state, sha):
        logs.create_log_group(logGroupName=f"/ecs/{spec.name}")
        ecs.register_task_definition(
            family=spec.name,
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory=str(spec.memory),
            containerDefinitions=[container_definition(spec)],
        )
        ecs.create_service(
            cluster=CLUSTER,
            serviceName=spec.name,
            taskDefinition=spec.name,
            desiredCount=1,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": [subnet],
                    "securityGroups": [],
                    "assignPublicIp": "DISABLED",
                }
            },
        )
    logs.create_log_group(logGroupName=f"/aws/lambda/{FUNCTION}")
    role = iam.create_role(
        RoleName="lab-lambda-worker",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("worker.py", "# the lab runs rootloop_lab.apps.lambda_worker\n")
    lam.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.11",
        Role=role,
        Handler="worker.handler",
        Code={"ZipFile": buf.getvalue()},
        Timeout=10,
        MemorySize=128,
        Environment={"Variables": worker_env(state)},
    )
    return state


def worker_env(state: LabState) -> dict[str, str]:
    return {
        "PG_DSN": state.pg_dsn("worker", application_name="lambda-worker"),
        "DB_POOL_SIZE": "2",
        "RECEIPT_FORMAT": "v2",
    }


def create_queues(state: LabState) -> LabState:
    sqs = client("sqs", state.endpoint_url)
    dlq = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "VisibilityTimeout": "3",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
        },
    )["QueueUrl"]
    return state.model_copy(update={"queue_url": queue, "dlq_url": dlq})


def create_mapping(emu: Emulator, state: LabState) -> None:
    """The event-source mapping; the lab's worker, not moto, polls the queue."""
    sqs, lam = client("sqs", state.endpoint_url), client("lambda", state.endpoint_url)
    arn = sqs.get_queue_attributes(QueueUrl=state.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=FUNCTION, BatchSize=10)
    # moto would invoke the function itself on every send (needs docker); the worker
    # process is this mapping's poller instead
    emu.sqs.queues[QUEUE].lambda_event_source_mappings.clear()
