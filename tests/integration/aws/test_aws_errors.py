"""Access denied, throttling and an unreachable endpoint become findings, never crashes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rootloop.actions.ecs import apply
from rootloop.actions.types import ScaleService
from rootloop.models import Status
from rootloop.platforms.aws.errors import AwsError, iam_action
from rootloop.platforms.aws.session import clear_cache
from tests.integration.aws.conftest import run_check
from tests.integration.aws.test_ecs_actions import make_topology, seed

SQS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}],
}


@pytest.fixture
def limited_profile(aws, moto_server, tmp_path, monkeypatch) -> Iterator[str]:
    """A profile whose user may only use SQS, with moto enforcing IAM."""
    iam = aws.client("iam")
    moto_server.enforce_iam(after_requests=3)
    iam.create_user(UserName="rootloop-limited")
    iam.put_user_policy(
        UserName="rootloop-limited", PolicyName="sqs-only", PolicyDocument=json.dumps(SQS_ONLY)
    )
    key = iam.create_access_key(UserName="rootloop-limited")["AccessKey"]
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[limited]\naws_access_key_id = {key['AccessKeyId']}\n"
        f"aws_secret_access_key = {key['SecretAccessKey']}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    clear_cache()
    yield "limited"
    moto_server.relax_iam()
    clear_cache()


async def test_access_denied_names_the_missing_permission(limited_profile, aws_settings):
    f = await run_check(
        "aws-ecs",
        "orders-ecs",
        {**aws_settings, "profile": limited_profile, "cluster": "staging", "service": "orders-api"},
    )
    assert f.status is Status.UNKNOWN
    assert f.value("aws_error") == "access_denied"
    assert f.value("missing_permission") == "ecs:DescribeServices"
    assert "ecs:DescribeServices" in f.summary


def test_action_access_denied_raises_a_platform_error(aws, moto_server, tmp_path, monkeypatch):
    seed(aws)
    t = make_topology(tmp_path, moto_server.endpoint_url)
    moto_server.enforce_iam(after_requests=0)  # the 'testing' keys are not an IAM user
    with pytest.raises(AwsError) as err:
        apply(
            ScaleService(target="orders-ecs", cluster="staging", service="orders-api", desired=3),
            aws,
            t,
        )
    assert err.value.kind == "access_denied"


async def test_unreachable_endpoint_is_an_unreachable_finding(moto_server, closed_port):
    port = closed_port  # nothing listens there
    f = await run_check(
        "aws-sqs",
        "orders-queue",
        {
            "region": "us-east-1",
            "endpoint_url": f"http://127.0.0.1:{port}",
            "queue_name": "orders",
            "connect_timeout": 1,
            "max_attempts": 1,
        },
    )
    assert f.status is Status.UNREACHABLE
    assert f.value("aws_error") == "unreachable"


class _Throttle(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def throttling_endpoint(moto_server) -> Iterator[str]:
    """A loopback AWS endpoint that throttles every call, as AWS does under load."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Throttle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_throttling_is_a_finding_after_bounded_retries(throttling_endpoint):
    f = await run_check(
        "aws-ecs",
        "orders-ecs",
        {
            "region": "us-east-1",
            "endpoint_url": throttling_endpoint,
            "cluster": "staging",
            "service": "orders-api",
            "max_attempts": 2,
        },
    )
    assert f.status is Status.UNKNOWN
    assert f.value("aws_error") == "throttled"
    assert "DescribeServices" in f.summary


def test_iam_action_names():
    assert iam_action("ecs", "DescribeServices") == "ecs:DescribeServices"
    assert iam_action("lambda", "ListFunctions20150331") == "lambda:ListFunctions"
    assert iam_action(None, "X") is None


async def test_unknown_profile_is_a_finding(moto_server, aws_settings):
    f = await run_check(
        "aws-sqs", "orders-queue", {**aws_settings, "profile": "no-such", "queue_name": "orders"}
    )
    assert f.status is Status.UNKNOWN and f.value("aws_error") == "credentials"
    assert "no-such" in f.summary
