"""Steady background traffic through the gateway: a few payments a second.

Faults show up the way they do in a real system — under load — and the queue,
the worker and the notification path stay busy.
"""

from __future__ import annotations

import http.client
import json
import random
import threading

RATE = 2.0  # requests per second


class Traffic:
    def __init__(self, gateway_port: int) -> None:
        self.port = gateway_port
        self.stop_event = threading.Event()
        self.sent = 0
        self.failed = 0

    def run(self) -> None:
        while not self.stop_event.wait(1.0 / RATE):
            body = json.dumps(
                {"amount_cents": random.randint(100, 50_000), "merchant_id": random.choice((1, 2))}
            )
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request(
                    "POST", "/api/payments", body=body, headers={"Content-Type": "application/json"}
                )
                ok = conn.getresponse().status < 400
            except OSError:
                ok = False
            finally:
                conn.close()
            self.sent += 1
            self.failed += 0 if ok else 1
