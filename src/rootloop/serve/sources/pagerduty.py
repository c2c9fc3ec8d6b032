"""PagerDuty v3 webhooks: ``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]``.

The signature is HMAC-SHA256 of the raw body with the subscription's secret.
PagerDuty sends several signatures while a secret rotates; any one valid
signature from any configured secret authenticates the delivery.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from rootloop.serve.alerts import Alert, clean_labels
from rootloop.serve.config import PagerDutySource
from rootloop.serve.signing import (
    BadPayload,
    Unauthorized,
    any_digest_matches,
    hmac_sha256,
    require_configured,
)

SOURCE = "pagerduty"
RESOLVING = {"incident.resolved"}
FIRING = {
    "incident.triggered",
    "incident.reopened",
    "incident.escalated",
    "incident.priority_updated",
}


class PdService(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = ""
    summary: str = ""


class PdData(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(default="", max_length=128)  # absent on pagey.ping
    type: str = ""
    title: str = ""
    status: str = ""
    urgency: str = ""
    html_url: str = ""
    service: PdService | None = None


class PdEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = ""
    event_type: str = Field(min_length=1)
    resource_type: str = ""
    occurred_at: datetime | None = None
    data: PdData


class PdWebhook(BaseModel):
    model_config = ConfigDict(extra="allow")
    event: PdEvent


def authenticate(body: bytes, header: str | None, config: PagerDutySource) -> None:
    require_configured(config.secrets, SOURCE)
    if not header:
        raise Unauthorized("missing X-PagerDuty-Signature")
    offered = [
        part.strip()[3:] for part in header.split(",") if part.strip().lower().startswith("v1=")
    ]
    if not offered:
        raise Unauthorized("X-PagerDuty-Signature has no v1= signature")
    expected = [hmac_sha256(secret, body) for secret in config.secrets]
    if not any_digest_matches(expected, offered):
        raise Unauthorized("signature does not match")


def to_alerts(payload: PdWebhook) -> list[Alert]:
    event, data = payload.event, payload.event.data
    if event.event_type in RESOLVING:
        status = "resolved"
    elif event.event_type in FIRING:
        status = "firing"
    else:  # acknowledged, annotated, pagey.ping…: news, not an alert that starts work
        status = "ignored"
    if not data.id and status != "ignored":
        raise BadPayload("event.data.id: an incident event needs the incident's id")
    labels = clean_labels(
        {
            "alertname": data.title or None,
            "service": data.service.summary if data.service else None,
            "pagerduty_service_id": data.service.id if data.service else None,
            "urgency": data.urgency or None,
            "event_type": event.event_type,
        }
    )
    return [
        Alert(
            source=SOURCE,
            fingerprint=f"{SOURCE}:{data.id or event.event_type + ':' + event.id}",
            status=status,
            labels=labels,
            annotations=clean_labels({"summary": data.title or None, "url": data.html_url or None}),
            starts_at=event.occurred_at,
        )
    ]
