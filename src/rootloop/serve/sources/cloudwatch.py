"""CloudWatch alarms, as SNS and EventBridge deliver them, turned into ``Alert``s.

Both carry the same facts under different names. The alarm's ARN is its
identity; ``ALARM`` fires, ``OK`` resolves, ``INSUFFICIENT_DATA`` says nothing
about the service and starts nothing (recorded as ignored).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rootloop.serve.alerts import Alert, AlertStatus, clean_labels

STATES: dict[str, AlertStatus] = {"ALARM": "firing", "OK": "resolved"}


def alarm_alert(
    source: str,
    *,
    name: str,
    arn: str | None,
    state: str,
    reason: str,
    description: str,
    account: str,
    region: str,
    namespace: str | None,
    metric: str | None,
    dimensions: dict[str, Any],
    at: datetime | None,
) -> Alert:
    identity = arn or f"{account}/{region}/{name}"
    labels = clean_labels(
        {
            "alertname": name,
            "aws_account": account or None,
            "aws_region": region or None,
            "namespace": namespace,
            "metric": metric,
            **{f"dimension_{k}": v for k, v in dimensions.items()},
        }
    )
    return Alert(
        source=source,
        fingerprint=f"cloudwatch:{identity}",
        status=STATES.get(state, "ignored"),
        labels=labels,
        annotations=clean_labels(
            {"summary": description or name, "reason": reason or None, "state": state}
        ),
        starts_at=at,
    )


def from_sns_message(message: dict[str, Any]) -> Alert | None:
    """An SNS notification's ``Message`` when it is a CloudWatch alarm; None otherwise."""
    if "AlarmName" not in message or "NewStateValue" not in message:
        return None
    trigger = message.get("Trigger") or {}
    dims = {
        str(d.get("name")): d.get("value")
        for d in trigger.get("Dimensions") or []
        if isinstance(d, dict) and d.get("name")
    }
    return alarm_alert(
        "sns",
        name=str(message["AlarmName"]),
        arn=message.get("AlarmArn"),
        state=str(message["NewStateValue"]),
        reason=str(message.get("NewStateReason") or ""),
        description=str(message.get("AlarmDescription") or ""),
        account=str(message.get("AWSAccountId") or ""),
        region=str(message.get("Region") or ""),
        namespace=trigger.get("Namespace"),
        metric=trigger.get("MetricName"),
        dimensions=dims,
        at=parse_time(message.get("StateChangeTime")),
    )


def parse_time(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
