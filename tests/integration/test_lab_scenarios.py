"""Injected faults are real: rootloop's own skills observe their symptoms, and the
ground-truth fix (through rootloop's action executors) really removes them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import rootloop
from rootloop.actions import aws_lambda
from rootloop.actions.types import SetFunctionEnv
from rootloop.errors import ActionRefused
from rootloop.models import Finding, Status
from rootloop.platforms.aws.session import AwsConfig, clients_for
from rootloop.reasoning import categories
from rootloop.sweep import run_sweep
from rootloop_lab import Lab
from rootloop_lab.scenarios import SCENARIOS

pytestmark = pytest.mark.lab  # starts the whole lab: not in make test-fast


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("lab"))
    lab.up()
    mp = pytest.MonkeyPatch()
    for k, v in lab.env().items():
        mp.setenv(k, v)
    try:
        yield lab
    finally:
        mp.undo()
        lab.down()


def sweep(map_file: Path, *names: str) -> dict[str, Finding]:
    topo = rootloop.load_map(map_file)
    nodes = [n for n in topo.nodes.values() if not names or n.name in names]
    return {f.node: f for f in run_sweep(nodes)}


def until(check: Callable[[], bool], timeout: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def test_ground_truth_is_complete() -> None:
    assert len(SCENARIOS) >= 9
    for s in SCENARIOS.values():
        assert s.category in categories.ALL
        assert s.root_cause in {
            "payments-api",
            "postgresql",
            "redis",
            "lambda-worker",
            "notification-svc",
            "sqs-payments",
        }


def test_pg_connection_hog_then_function_env_fix(lab: Lab) -> None:
    lab.inject("pg-connection-hog")

    def exhausted() -> bool:
        pg = sweep(lab.map_file, "postgresql")["postgresql"]
        return pg.status == Status.CRITICAL and "lambda-worker" in pg.model_dump_json()

    assert until(exhausted), sweep(lab.map_file, "postgresql")
    # production map: the executor refuses before any change
    prod = rootloop.load_map(lab.write_map(production=True))
    action = SetFunctionEnv(
        target="lambda-worker", function_name="lambda-worker", name="DB_POOL_SIZE", value="2"
    )
    clients = clients_for(AwsConfig(endpoint_url=lab.state().endpoint_url, region="us-east-1"))
    with pytest.raises(ActionRefused):
        aws_lambda.apply(action, clients, prod)
    env = clients.lambda_.get_function_configuration(FunctionName="lambda-worker")
    assert env["Environment"]["Variables"]["DB_POOL_SIZE"] == "200"
    # the lower map: the fix applies and the connections come back
    result = aws_lambda.apply(action, clients, rootloop.load_map(lab.map_file))
    assert result.ok and "200 -> 2" in result.changed
    assert until(lambda: sweep(lab.map_file, "postgresql")["postgresql"].status == Status.OK)


def test_oom_batch_is_killed_with_exit_137(lab: Lab) -> None:
    lab.inject("oom-batch")

    def oom() -> bool:
        f = sweep(lab.map_file, "payments-api/compute")["payments-api/compute"]
        return f.status == Status.CRITICAL and "137" in f.summary

    assert until(oom)
    ecs = clients_for(AwsConfig(endpoint_url=lab.state().endpoint_url, region="us-east-1")).ecs
    arns = ecs.list_tasks(cluster="lab", serviceName="payments-api", desiredStatus="STOPPED")[
        "taskArns"
    ]
    tasks = ecs.describe_tasks(cluster="lab", tasks=arns)["tasks"]
    killed = [t for t in tasks if t["stoppedReason"].startswith("OutOfMemoryError")]
    assert killed and killed[0]["containers"][0]["exitCode"] == 137


def test_downstream_http_503(lab: Lab) -> None:
    lab.inject("downstream-http-503")
    f = sweep(lab.map_file, "notification-svc")["notification-svc"]
    assert f.status in (Status.CRITICAL, Status.DEGRADED) and "503" in f.summary
