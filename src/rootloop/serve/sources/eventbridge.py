"""EventBridge API destinations: an event posted with a bearer key.

The connection's API-key authorization sends a fixed header; rootloop expects
``Authorization: Bearer <key>`` and compares it in constant time. CloudWatch
alarm state changes become alarm alerts; any other event becomes an alert
identified by its source, detail type and resources.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rootloop.serve.alerts import Alert, clean_labels, labels_fingerprint
from rootloop.serve.config import EventBridgeSource
from rootloop.serve.signing import check_bearer, check_key
from rootloop.serve.sources.cloudwatch import alarm_alert, parse_time

SOURCE = "eventbridge"
ALARM_CHANGE = "CloudWatch Alarm State Change"


class EbEvent(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(min_length=1)
    detail_type: str = Field(alias="detail-type", min_length=1)
    source: str = Field(min_length=1)
    account: str = ""
    region: str = ""
    time: datetime | None = None
    resources: list[str] = []
    detail: dict[str, Any] = {}


def authenticate(header: str | None, config: EventBridgeSource) -> None:
    """``Authorization: Bearer <key>``, or the raw key when the connection uses another
    header name (``sources.eventbridge.header``, e.g. ``X-Api-Key``)."""
    if config.header.lower() == "authorization":
        check_bearer(header, config.keys, SOURCE)
    else:
        check_key(header, config.keys, SOURCE)


def to_alerts(event: EbEvent) -> list[Alert]:
    if event.detail_type == ALARM_CHANGE and event.source == "aws.cloudwatch":
        detail = event.detail
        state = detail.get("state") or {}
        config = detail.get("configuration") or {}
        metric: dict[str, Any] = {}
        for item in config.get("metrics") or []:
            metric = ((item or {}).get("metricStat") or {}).get("metric") or {}
            if metric:
                break
        return [
            alarm_alert(
                SOURCE,
                name=str(detail.get("alarmName") or event.resources[:1] or event.id),
                arn=event.resources[0] if event.resources else None,
                state=str(state.get("value") or ""),
                reason=str(state.get("reason") or ""),
                description=str(config.get("description") or ""),
                account=event.account,
                region=event.region,
                namespace=metric.get("namespace"),
                metric=metric.get("name"),
                dimensions=metric.get("dimensions") or {},
                at=parse_time(state.get("timestamp")) or event.time,
            )
        ]
    labels = clean_labels(
        {
            "alertname": event.detail_type,
            "event_source": event.source,
            "aws_account": event.account or None,
            "aws_region": event.region or None,
            "resource": event.resources[0] if event.resources else None,
        }
    )
    return [
        Alert(
            source=SOURCE,
            fingerprint=labels_fingerprint(SOURCE, labels),
            status="firing",
            labels=labels,
            annotations=clean_labels({"summary": event.detail_type}),
            starts_at=event.time,
        )
    ]
