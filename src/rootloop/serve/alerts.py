"""One alert, whatever sent it: the shape routing and admission work on.

Every source (Alertmanager, SNS, PagerDuty, EventBridge, the generic webhook)
turns its payload into these. The fingerprint is the sender's own identity for
the alert when it has one (Alertmanager's ``fingerprint``, an alarm's ARN, a
PagerDuty incident id), prefixed with the source so two senders never collide.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from rootloop.models import utcnow

AlertStatus = Literal["firing", "resolved", "ignored"]


class Alert(BaseModel):
    source: str
    fingerprint: str
    status: AlertStatus
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    starts_at: datetime | None = None
    received_at: datetime = Field(default_factory=utcnow)
    # Alertmanager's link to the rule's expression (``…/graph?g0.expr=…``): the run
    # re-asks that query of the map's own Prometheus before it may say "not reproduced".
    generator_url: str = ""

    @property
    def title(self) -> str:
        return (
            self.annotations.get("summary")
            or self.labels.get("alertname")
            or self.annotations.get("description", "")[:120]
            or self.fingerprint
        )


def labels_fingerprint(source: str, labels: dict[str, str]) -> str:
    """An identity from the label set, for senders that give none (as Alertmanager does)."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return f"{source}:{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def clean_labels(raw: dict[str, object]) -> dict[str, str]:
    """Label values as strings; nested values as compact JSON, never dropped."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        out[str(key)] = (
            value
            if isinstance(value, str)
            else json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
        )
    return out


class Verdict(StrEnum):
    """What intake did with one alert. Each is recorded; none is a silent drop."""

    STARTED = "started"  # a new investigation was queued
    ATTACHED = "attached"  # joined the investigation already running for its service
    FLAPPING = "flapping"  # fired again within the flap window after its investigation ended
    RATE_LIMITED = "rate-limited"  # the service had its share of investigations this period
    UNROUTED = "unrouted"  # no route matched: recorded and listed at GET /alerts?unrouted=1
    RESOLVED = "resolved"  # a resolved notice, recorded on its investigation
    IGNORED = "ignored"  # not an alert state that calls for action (e.g. INSUFFICIENT_DATA)
