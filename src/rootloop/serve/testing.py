"""A recording investigator for tests and the bench: no loop, observable side effects.

Selected with ``investigator: rootloop.serve.testing:record`` in the serve
config. It appends ``start <id>`` to ``$ROOTLOOP_SERVE_FAKE_LOG``, waits while
``$ROOTLOOP_SERVE_FAKE_HOLD`` names a file that exists (so a test can kill the
worker mid-investigation), sleeps ``$ROOTLOOP_SERVE_FAKE_SECONDS``, then appends
``effect <id>`` — once per investigation, keyed like the loop's idempotency keys.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from rootloop.serve.investigate import InvestigationOutcome, InvestigationRequest


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def record(request: InvestigationRequest) -> InvestigationOutcome:
    log = Path(os.environ.get("ROOTLOOP_SERVE_FAKE_LOG", "/dev/null"))
    inv = request.investigation_id
    _append(log, f"start {inv} pid={os.getpid()}")
    hold = os.environ.get("ROOTLOOP_SERVE_FAKE_HOLD")
    while hold and Path(hold).exists():
        time.sleep(0.1)
    time.sleep(float(os.environ.get("ROOTLOOP_SERVE_FAKE_SECONDS", "0")))
    done = log.exists() and f"effect {inv}\n" in log.read_text(encoding="utf-8")
    if not done:
        _append(log, f"effect {inv}")
    return InvestigationOutcome("healthy", "recorded by the fake investigator", run_id=inv)


def write_map(path: Path, service: str, environment: str = "staging") -> Path:
    """A minimal service map routes can point at (one HTTP check on a closed port)."""
    path.write_text(
        f"service: {service}\nenvironment: {environment}\nupstream: []\ndownstream:\n"
        f"  - {{name: {service}-health, type: http, skill: http-health, "
        f'url: "http://127.0.0.1:9/health"}}\n',
        encoding="utf-8",
    )
    return path


def alertmanager_body(
    fingerprint: str, labels: dict[str, str], status: str = "firing"
) -> dict[str, object]:
    """An Alertmanager v4 webhook body holding one alert."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="' + labels.get("alertname", "") + '"}',
        "status": status,
        "receiver": "rootloop",
        "groupLabels": {},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": f"{labels.get('alertname', 'alert')} is firing"},
                "startsAt": "2026-12-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.invalid/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


def pagerduty_signature(secrets: list[str], body: bytes) -> str:
    import hashlib
    import hmac

    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)
