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
