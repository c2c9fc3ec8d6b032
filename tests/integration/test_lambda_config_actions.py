"""Lambda configuration history and the actions that act on it, against moto's server:
the version before a release, reverting to it, a reservation removed, production refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rootloop.actions import aws_lambda_config as lc
from rootloop.actions.types import RevertFunctionConfig, SetFunctionConcurrency, SetFunctionTimeout
from rootloop.errors import ActionRefused
from rootloop.skills import lambda_history
from tests.integration.aws.test_lambda_elasticache import make_function
from tests.integration.test_gate_executors import write

NAME = "orders-worker"


def release(aws, **config) -> None:
    aws.lambda_.publish_version(FunctionName=NAME)
    aws.lambda_.update_function_configuration(FunctionName=NAME, **config)
    aws.lambda_.publish_version(FunctionName=NAME)


def history(aws) -> lambda_history.ConfigHistory:
    cfg = aws.lambda_.get_function_configuration(FunctionName=NAME)
    since = datetime.now(UTC) - timedelta(minutes=5)
    return lambda_history.read(aws.lambda_, NAME, cfg, since, None)


def test_the_version_before_a_release_is_what_changed_and_when(aws):
    make_function(aws, timeout=30)
    assert history(aws).previous is None  # nothing published: nothing to go back to
    release(aws, Timeout=1, Handler="other.handle")
    h = history(aws)
    assert h.previous is not None and h.previous["Version"] == "1"
    assert "Timeout 30 -> 1" in h.changes and any("Handler" in c for c in h.changes)
    assert h.released_at is not None and h.released_at > datetime.now(UTC) - timedelta(minutes=1)


def test_revert_restores_the_versions_configuration_once(aws, moto_server, tmp_path):
    make_function(aws, timeout=30)
    release(aws, Timeout=1, Environment={"Variables": {"MODE": "fast"}})
    topo = write(tmp_path, moto_server.endpoint_url)
    action = RevertFunctionConfig(target=NAME, function_name=NAME, version="1")
    result = lc.apply(action, aws, topo)
    now = aws.lambda_.get_function_configuration(FunctionName=NAME)
    assert result.ok and not result.no_op and now["Timeout"] == 30
    assert "MODE" not in now.get("Environment", {}).get("Variables", {})
    assert "fast" not in result.changed  # environment values are never shown
    again = lc.apply(action, aws, topo)
    assert again.no_op


def test_a_reservation_of_zero_is_removed_and_a_timeout_raised(aws, moto_server, tmp_path):
    make_function(aws, timeout=3)
    aws.lambda_.put_function_concurrency(FunctionName=NAME, ReservedConcurrentExecutions=0)
    topo = write(tmp_path, moto_server.endpoint_url)
    done = lc.apply(SetFunctionConcurrency(target=NAME, function_name=NAME, reserved=-1), aws, topo)
    got = aws.lambda_.get_function_concurrency(FunctionName=NAME)
    assert done.changed.endswith("0 -> none") and "ReservedConcurrentExecutions" not in got
    lc.apply(SetFunctionTimeout(target=NAME, function_name=NAME, timeout=6), aws, topo)
    assert aws.lambda_.get_function_configuration(FunctionName=NAME)["Timeout"] == 6


def test_a_production_function_is_refused_before_any_change(aws, moto_server, tmp_path):
    make_function(aws, timeout=30)
    release(aws, Timeout=1)
    fn = aws.lambda_.get_function_configuration(FunctionName=NAME)
    aws.lambda_.tag_resource(Resource=fn["FunctionArn"], Tags={"env": "prod"})
    topo = write(tmp_path, moto_server.endpoint_url)
    for action in (
        RevertFunctionConfig(target=NAME, function_name=NAME, version="1"),
        SetFunctionConcurrency(target=NAME, function_name=NAME, reserved=5),
    ):
        with pytest.raises(ActionRefused):
            lc.apply(action, aws, topo)
    assert aws.lambda_.get_function_configuration(FunctionName=NAME)["Timeout"] == 1
    assert "ReservedConcurrentExecutions" not in aws.lambda_.get_function_concurrency(
        FunctionName=NAME
    )
