"""notification-svc: sends payment notifications.

The digest path has a real bug: it takes the sender lock and returns early on an
empty digest without releasing it, so every later notification waits for a lock
nobody will release, and the service answers 503 until it is restarted.

The bulk path has another: a bulk send makes the (simulated) mail provider push back,
and the sender paces itself — but the pause never decays, so every later send, and
the health check's test send, waits it out: slow, not failing, until a restart.

Its rate limit (``RATE_LIMIT_PER_S``, default 50; a token bucket holding one second's
worth) applies to every request, health checks included, as a per-service limit in
front of an API does: over it, the answer is ``429 Too Many Requests`` with
``Retry-After`` (RFC 6585, RFC 9110) in whole seconds.

``RENDER_CACHE=on`` turns on a cache of rendered notifications with a real bug: it has
no bound and no expiry, so every notification adds its rendering (512 KiB) for good —
memory climbs with the traffic until the task is OOM-killed, then again in the next.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time

from rootloop_lab.apps.common import Handler, Server, leak_dump, leaked_secrets, setup_logging
from rootloop_lab.apps.httpmetrics import HttpMetrics

log = logging.getLogger("notification")
SENDER = threading.Lock()
LOCK_WAIT = 2.0
PUSHBACK_PAUSE = 2.0  # seconds the provider asks for after a bulk send
pace = 0.0  # the sender's pause before each send
sent = 0
RENDERED: dict[object, bytes] = {}  # BUG when on: never evicted
RENDER_BYTES = 512 * 1024


def render(payment_id: object, template: str) -> None:
    if os.environ.get("RENDER_CACHE", "off") == "on":
        key = (template, payment_id, len(RENDERED))
        RENDERED[key] = bytes([len(RENDERED) % 251]) * RENDER_BYTES  # touched: resident


def send(payment_id: object, template: str) -> None:
    global sent, pace
    render(payment_id, template)
    if pace:
        time.sleep(pace)
    if template == "bulk":
        pace = PUSHBACK_PAUSE  # BUG: never decays back to 0
    if not SENDER.acquire(timeout=LOCK_WAIT):
        raise TimeoutError("sender lock not available after 2s (sender stuck)")
    if template == "digest" and payment_id in (None, "", []):
        return  # BUG: returns with the lock held
    sent += 1
    SENDER.release()


class RateLimit:
    """A token bucket: ``rate`` requests a second, bursts of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = max(0.01, rate)
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 when the request may pass; else the seconds until a token is back."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


def main() -> None:
    setup_logging()
    port = int(os.environ["PORT"])
    limit = RateLimit(float(os.environ.get("RATE_LIMIT_PER_S", "50") or 50))

    class Notification(Handler):
        metrics = HttpMetrics(("/notify",))

        def limited(self) -> bool:
            wait = limit.take()
            if not wait:
                return False
            body = json.dumps({"error": "rate limited", "limit_per_s": limit.rate}).encode()
            if self.metrics is not None:  # a 429 is an answer like any other: counted
                elapsed = time.perf_counter() - self._started
                self.metrics.observe(self.command or "", self.path, 429, elapsed)
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", str(max(1, math.ceil(wait))))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return True

        def do_GET(self) -> None:
            if self.limited():
                return
            if self.path != "/health":
                self.reply(404, {"error": "not found"})
                return
            if pace:
                time.sleep(pace)  # the health check's test send is paced like any other
            if SENDER.acquire(timeout=LOCK_WAIT):
                SENDER.release()
                self.reply(200, {"status": "ok", "sent": sent})
            else:
                dump = leak_dump(leaked_secrets())
                log.error("health: sender stuck, cannot send notifications %s", dump or "")
                self.reply(503, {"status": "unavailable", "error": "sender stuck", **dump})

        def do_POST(self) -> None:
            if self.limited():
                self.body()  # read the request so the connection stays in step
                return
            if self.path != "/notify":
                self.reply(404, {"error": "not found"})
                return
            try:
                msg = json.loads(self.body() or b"{}")
                send(msg.get("payment_id"), str(msg.get("template", "receipt")))
                self.reply(202, {"status": "queued"})
            except TimeoutError as exc:
                dump = leak_dump(leaked_secrets())
                log.error("notify failed: %s %s", exc, dump or "")
                self.reply(503, {"error": str(exc), **dump})

    log.info("notification-svc listening on 127.0.0.1:%d", port)
    Server(("127.0.0.1", port), Notification).serve_forever()


if __name__ == "__main__":
    main()
