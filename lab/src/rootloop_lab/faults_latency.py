"""Latency faults: a dependency that answers, slowly.

``notification-slow``: one bulk send makes the mail provider push back; the notifier's
sender paces itself and never stops (see ``rootloop_lab.apps.notification``). Every
payment waits ~2 s for its notification and still succeeds: latency, not errors. The
probe times the notifier's own health endpoint with its own client.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from rootloop.reasoning import categories as cat
from rootloop_lab.apps.notification import PUSHBACK_PAUSE
from rootloop_lab.packs import PackScenario
from rootloop_lab.scenarios import Scenario, with_payments


def _bulk_send(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    body = json.dumps({"template": "bulk", "payment_id": list(range(1, 501))}).encode()
    req = urllib.request.Request(
        f"{state.url('notification-svc')}/notify",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()
    return {"service": "notification-svc", "pause_s": PUSHBACK_PAUSE}


def _notifier_quick(lab: Any, state: Any) -> tuple[bool, str]:
    """Fixed when the notifier's health answers in well under the injected pause."""
    start = time.monotonic()
    try:
        with urllib.request.urlopen(f"{state.url('notification-svc')}/health", timeout=10) as r:
            status = r.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return False, f"notification-svc unreachable: {exc}"
    took = time.monotonic() - start
    return status == 200 and took < PUSHBACK_PAUSE / 2, (
        f"notification-svc /health {status} in {took * 1000:.0f} ms "
        f"(the injected pause is {PUSHBACK_PAUSE * 1000:.0f} ms)"
    )


SCENARIOS = [
    PackScenario(
        Scenario(
            name="notification-slow",
            root_cause="notification-svc",
            category=cat.SLOW_DEPENDENCY,
            description="a bulk send makes the notifier pace every later send by 2 s and "
            "never stop: payments still succeed, each ~2 s slower (latency, not errors)",
            fix="restart notification-svc (force a new deployment): the pause is process state",
            fix_kinds=["restart"],
        ),
        _bulk_send,
        with_payments(_notifier_quick),
    ),
]
