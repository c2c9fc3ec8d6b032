"""A generic outbound webhook: the event as JSON, signed like rootloop's own intake.

Headers: ``X-Rootloop-Timestamp: <unix seconds>`` and
``X-Rootloop-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>`` —
the receiver recomputes it with the shared secret and refuses old timestamps.
``X-Rootloop-Event`` names the event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from rootloop.notify.events import Event


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def post(client: httpx.Client, url: str, secret: str, event: Event) -> int:
    body = json.dumps({"event": event.kind, **event.to_json()}, sort_keys=True).encode()
    now = int(time.time())
    headers = {
        "content-type": "application/json",
        "x-rootloop-timestamp": str(now),
        "x-rootloop-signature": signature(secret, now, body),
        "x-rootloop-event": event.kind,
    }
    return client.post(url, content=body, headers=headers, timeout=15).status_code
