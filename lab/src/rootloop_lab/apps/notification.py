"""notification-svc: sends payment notifications.

The digest path has a real bug: it takes the sender lock and returns early on an
empty digest without releasing it, so every later notification waits for a lock
nobody will release, and the service answers 503 until it is restarted.

The bulk path has another: a bulk send makes the (simulated) mail provider push back,
and the sender paces itself — but the pause never decays, so every later send, and
the health check's test send, waits it out: slow, not failing, until a restart.
"""

from __future__ import annotations

import json
import logging
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


def send(payment_id: object, template: str) -> None:
    global sent, pace
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


def main() -> None:
    setup_logging()
    port = int(os.environ["PORT"])

    class Notification(Handler):
        metrics = HttpMetrics(("/notify",))

        def do_GET(self) -> None:
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
