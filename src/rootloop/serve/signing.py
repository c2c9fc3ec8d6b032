"""Sender authentication shared by the sources: HMACs, bearer keys, timestamps.

Every comparison is constant-time (``hmac.compare_digest``) and every failure
is one exception, ``Unauthorized``, whose message says what was wrong without
echoing what the sender sent: the app turns it into a 401.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

from pydantic import SecretStr


class Unauthorized(Exception):
    """The sender could not be authenticated (401)."""


class Forbidden(Exception):
    """The sender is authentic but not allowed here, e.g. a foreign SNS topic (403)."""


class BadPayload(Exception):
    """The body is not what this source sends (400). The message is the reason."""


def hmac_sha256(secret: SecretStr, message: bytes) -> str:
    return hmac.new(secret.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


def any_digest_matches(expected: Iterable[str], offered: Iterable[str]) -> bool:
    """True when any offered digest equals any expected one; every pair is compared."""
    found = False
    for want in expected:
        for got in offered:
            found |= hmac.compare_digest(want.encode(), got.strip().lower().encode())
    return found


def require_configured(secrets: list[SecretStr], source: str) -> None:
    if not secrets:
        raise Unauthorized(f"{source} intake has no secret configured; it accepts nothing")


def check_bearer(header: str | None, keys: list[SecretStr], source: str) -> None:
    require_configured(keys, source)
    if not header:
        raise Unauthorized("missing credentials")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("expected 'Authorization: Bearer <key>'")
    if not _exact_any(token.strip(), keys):
        raise Unauthorized("wrong key")


def check_key(value: str | None, keys: list[SecretStr], source: str) -> None:
    """A raw key in a header of the sender's choosing (e.g. ``X-Api-Key: <key>``)."""
    require_configured(keys, source)
    if not value:
        raise Unauthorized("missing credentials")
    if not _exact_any(value.strip(), keys):
        raise Unauthorized("wrong key")


def _exact_any(token: str, keys: list[SecretStr]) -> bool:
    found = False
    for key in keys:
        found |= hmac.compare_digest(key.get_secret_value().encode(), token.encode())
    return found


def check_timestamp(raw: str | None, window_seconds: int, now: float | None = None) -> int:
    """A Unix timestamp within ±window of now; an old one is a replay, a future one a forgery."""
    if not raw:
        raise Unauthorized("missing timestamp header")
    try:
        stamp = int(raw.strip())
    except ValueError:
        raise Unauthorized("timestamp is not a Unix time in seconds") from None
    skew = abs((now if now is not None else time.time()) - stamp)
    if skew > window_seconds:
        raise Unauthorized(f"timestamp outside the {window_seconds}s window (replayed or skewed)")
    return stamp
