"""A generic JSON webhook for any sender that can sign with HMAC.

Headers: ``X-Rootloop-Timestamp`` (Unix seconds) and ``X-Rootloop-Signature:
sha256=<hex>``, the HMAC-SHA256 of ``"<timestamp>." + body``. Signing the
timestamp with the body is what makes the replay window mean something: an old
delivery cannot be given a fresh timestamp without the secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rootloop.serve.alerts import Alert, labels_fingerprint
from rootloop.serve.config import GenericSource
from rootloop.serve.signing import (
    Unauthorized,
    any_digest_matches,
    check_timestamp,
    hmac_sha256,
    require_configured,
)

SOURCE = "generic"
TIMESTAMP_HEADER = "X-Rootloop-Timestamp"
SIGNATURE_HEADER = "X-Rootloop-Signature"


class GenericAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fingerprint: str | None = Field(default=None, min_length=1, max_length=128)
    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = {}
    startsAt: datetime | None = None


class GenericWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alerts: list[GenericAlert] = Field(min_length=1, max_length=1000)


def sign(secret_value: str, timestamp: int, body: bytes) -> str:
    """The header value a sender computes (used by tests, the bench and docs)."""
    from pydantic import SecretStr

    return "sha256=" + hmac_sha256(SecretStr(secret_value), f"{timestamp}.".encode() + body)


def authenticate(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    config: GenericSource,
    now: float | None = None,
) -> None:
    require_configured(config.secrets, SOURCE)
    if not signature or not signature.lower().startswith("sha256="):
        raise Unauthorized(f"missing or malformed {SIGNATURE_HEADER} (expected sha256=<hex>)")
    stamp = check_timestamp(timestamp, config.window_seconds, now)
    message = f"{stamp}.".encode() + body
    expected = [hmac_sha256(secret, message) for secret in config.secrets]
    if not any_digest_matches(expected, [signature[7:]]):
        raise Unauthorized("signature does not match")


def to_alerts(payload: GenericWebhook) -> list[Alert]:
    return [
        Alert(
            source=SOURCE,
            fingerprint=(
                f"{SOURCE}:{item.fingerprint}"
                if item.fingerprint
                else labels_fingerprint(SOURCE, item.labels)
            ),
            status=item.status,
            labels=item.labels,
            annotations=item.annotations,
            starts_at=item.startsAt,
        )
        for item in payload.alerts
    ]
