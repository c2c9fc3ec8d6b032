"""botocore's exceptions, translated once, at this boundary, into findings.

A check that cannot talk to AWS still tells the operator something useful:
which IAM action is missing (``ecs:DescribeServices``), that the API is
throttling, or that the endpoint cannot be reached. Skills call
``failure_finding`` with whatever boto3 raised; actions call ``translate`` and
raise the ``AwsError`` (a ``PlatformError``) it returns.
"""

from __future__ import annotations

import re
from typing import Literal

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from rootloop.errors import PlatformError
from rootloop.models import Finding, Signal, Status
from rootloop.platforms.aws.session import last_service

Kind = Literal["throttled", "access_denied", "unreachable", "not_found", "credentials", "error"]

#: exceptions a skill turns into a finding instead of letting them escape
AWS_ERRORS: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)

_THROTTLE = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "LimitExceededException",
    "Rate exceeded",
}
_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedException",
    "NotAuthorized",
    "AuthorizationError",
    "AuthFailure",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ClientException.AccessDenied",
}
_NOT_FOUND = re.compile(r"NotFound|NonExistent|DoesNotExist|NoSuch|^ResourceNotFound", re.I)
_PERFORM = re.compile(r"perform:\s*([a-z0-9-]+:[A-Za-z0-9]+)")

#: boto3 service name -> IAM action prefix, where they differ
_IAM_PREFIX = {
    "cloudwatch": "cloudwatch",
    "logs": "logs",
    "lambda": "lambda",
    "elasticache": "elasticache",
    "ecs": "ecs",
    "sqs": "sqs",
    "sts": "sts",
}
_CONNECT = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


class AwsError(PlatformError):
    """An AWS call failed; ``kind`` says how, ``permission`` names a missing IAM action."""

    def __init__(
        self,
        kind: Kind,
        message: str,
        *,
        permission: str | None = None,
        operation: str | None = None,
        hint: str = "",
    ) -> None:
        self.kind, self.permission, self.operation = kind, permission, operation
        super().__init__(message, hint)


def iam_action(service: str | None, operation: str | None) -> str | None:
    """``("ecs", "DescribeServices")`` -> ``"ecs:DescribeServices"``."""
    if not service or not operation:
        return None
    op = re.sub(r"\d{8}$", "", operation)  # Lambda's versioned names: ListFunctions20150331
    return f"{_IAM_PREFIX.get(service, service)}:{op}"


def _service_of(exc: ClientError) -> str | None:
    tagged = getattr(exc, "_rootloop_service", None)
    if tagged:
        return str(tagged)
    if last_service():
        return last_service()
    meta = exc.response.get("ResponseMetadata", {}) if isinstance(exc.response, dict) else {}
    host = str(meta.get("HTTPHeaders", {}).get("host", ""))
    return host.split(".")[0] if host.endswith("amazonaws.com") else None


def translate(exc: BaseException, service: str | None = None) -> AwsError:
    """One AwsError for anything boto3 raised."""
    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        code = str(err.get("Code", "")) or "Unknown"
        msg = " ".join(str(err.get("Message", "") or exc).split())[:400]
        op = exc.operation_name
        status = (exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
        if code in _THROTTLE or "throttl" in code.lower() or "rate exceeded" in msg.lower():
            return AwsError(
                "throttled",
                f"{op} was throttled by AWS ({code}: {msg})",
                operation=op,
                hint="the check retried and gave up; lower the sweep's "
                "frequency or raise the API quota",
            )
        if code in _DENIED or status == 403 or "not authorized" in msg.lower():
            perm = None
            m = _PERFORM.search(msg)
            perm = m.group(1) if m else iam_action(service or _service_of(exc), op)
            need = perm or op
            return AwsError(
                "access_denied",
                f"access denied to {need} ({code}: {msg})",
                permission=perm,
                operation=op,
                hint=f"grant {need} to the role rootloop runs as (see docs/aws.md)",
            )
        if _NOT_FOUND.search(code) or code in {
            "ClusterNotFoundException",
            "ServiceNotFoundException",
        }:
            return AwsError(
                "not_found",
                f"{op}: {code}: {msg}",
                operation=op,
                hint="check the resource name and region in the map",
            )
        return AwsError("error", f"{op}: {code}: {msg}", operation=op)
    if isinstance(exc, _CONNECT):
        text = " ".join(str(exc).split())[:300]
        return AwsError(
            "unreachable",
            f"AWS endpoint unreachable: {text}",
            hint="check endpoint_url, region, network and VPC endpoints",
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return AwsError(
            "credentials",
            f"no usable AWS credentials: {exc}",
            hint="set a profile, AWS_* environment variables or an instance role",
        )
    if isinstance(exc, NoRegionError):
        return AwsError(
            "credentials", "no AWS region configured", hint="set 'region' on the node or AWS_REGION"
        )
    return AwsError("error", f"{type(exc).__name__}: {exc}")


_STATUS: dict[Kind, Status] = {
    "unreachable": Status.UNREACHABLE,
    "throttled": Status.UNKNOWN,
    "access_denied": Status.UNKNOWN,
    "credentials": Status.UNKNOWN,
    "not_found": Status.UNKNOWN,
    "error": Status.UNKNOWN,
}


def failure_finding(
    node: str, skill: str, exc: BaseException, service: str | None = None
) -> Finding:
    """The finding for a check that AWS would not answer."""
    err = translate(exc, service)
    signals = [Signal(name="aws_error", value=err.kind, status=_STATUS[err.kind])]
    if err.permission:
        signals.append(
            Signal(name="missing_permission", value=err.permission, status=Status.UNKNOWN)
        )
    if err.kind == "access_denied":
        summary = f"cannot check {node}: missing IAM permission {err.permission or err.operation}"
    elif err.kind == "throttled":
        summary = f"cannot check {node}: AWS throttled {err.operation}"
    elif err.kind == "unreachable":
        summary = f"cannot reach {node}: {err}"
    else:
        summary = f"cannot check {node}: {err}"
    return Finding(
        node=node,
        skill=skill,
        status=_STATUS[err.kind],
        summary=summary[:500],
        signals=signals,
        error=str(err)[:500],
    )


def tag_service(exc: BaseException, service: str) -> BaseException:
    """Remember which AWS service raised ``exc`` (for naming the IAM action)."""
    if isinstance(exc, ClientError) and not hasattr(exc, "_rootloop_service"):
        exc._rootloop_service = service  # type: ignore[attr-defined]
    return exc
