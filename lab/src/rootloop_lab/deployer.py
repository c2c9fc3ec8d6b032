"""The lower environment's deployer: a green CI run of ``main`` or a ``rootloop/*``
branch becomes a new task-definition revision (same settings, ``GIT_SHA`` set to
the commit) and an ``update_service`` — the agent then rolls the tasks.
"""

from __future__ import annotations

import logging
from typing import Any

from rootloop_lab.ci import RunRecord
from rootloop_lab.cloud import client
from rootloop_lab.layout import CLUSTER, SERVICE

log = logging.getLogger("rootloop_lab.deployer")
_KEEP = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
)


def deploys(branch: str) -> bool:
    return branch == "main" or branch.startswith("rootloop/")


def deployed_sha(ecs: Any, service: str = SERVICE) -> str | None:
    svc = ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    env = td["containerDefinitions"][0].get("environment", [])
    return next((e["value"] for e in env if e["name"] == "GIT_SHA"), None)


def deploy(endpoint: str, sha: str, service: str = SERVICE) -> str:
    """Register a revision running ``sha`` and point the service at it; its ARN."""
    ecs = client("ecs", endpoint)
    svc = ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    spec = {k: td[k] for k in _KEEP if td.get(k) not in (None, [], "")}
    for c in spec["containerDefinitions"]:
        env = [e for e in c.get("environment", []) if e["name"] != "GIT_SHA"]
        c["environment"] = [*env, {"name": "GIT_SHA", "value": sha}]
    arn = ecs.register_task_definition(**spec)["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=CLUSTER, service=service, taskDefinition=arn)
    log.info("deployed %s to %s as %s", sha[:7], service, arn.rsplit("/", 1)[-1])
    return arn


class Deployer:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def __call__(self, run: RunRecord) -> None:
        if not deploys(run.head_branch):
            return
        if deployed_sha(client("ecs", self.endpoint)) == run.head_sha:
            return
        deploy(self.endpoint, run.head_sha)
