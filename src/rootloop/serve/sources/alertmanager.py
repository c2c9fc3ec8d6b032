"""Prometheus Alertmanager's webhook (payload version 4).

Alertmanager groups alerts and resends the whole group on every
``repeat_interval`` and whenever one alert in it changes, so the same alert
arrives many times: its ``fingerprint`` is what admission deduplicates on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rootloop.serve.alerts import Alert, labels_fingerprint
from rootloop.serve.config import AlertmanagerSource
from rootloop.serve.signing import check_bearer

SOURCE = "alertmanager"


class AmAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = Field(default="", max_length=128)


class AmWebhook(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = {}
    commonLabels: dict[str, str] = {}
    commonAnnotations: dict[str, str] = {}
    externalURL: str = ""
    truncatedAlerts: int = 0
    alerts: list[AmAlert] = Field(min_length=1, max_length=10_000)


def authenticate(authorization: str | None, config: AlertmanagerSource) -> None:
    """Alertmanager can send a bearer token; when the operator configured one it is required."""
    if config.tokens:
        check_bearer(authorization, config.tokens, SOURCE)


def to_alerts(payload: AmWebhook) -> list[Alert]:
    out = []
    for item in payload.alerts:
        labels = {**payload.commonLabels, **item.labels}
        annotations = {**payload.commonAnnotations, **item.annotations}
        fingerprint = (
            f"{SOURCE}:{item.fingerprint}"
            if item.fingerprint
            else labels_fingerprint(SOURCE, item.labels)
        )
        out.append(
            Alert(
                source=SOURCE,
                fingerprint=fingerprint,
                status=item.status,
                labels=labels,
                annotations=annotations,
                starts_at=item.startsAt,
                generator_url=item.generatorURL[:2000],
            )
        )
    return out
