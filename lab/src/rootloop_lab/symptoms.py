"""Waiting for an injected fault to show: the moment an on-call engineer would be paged.

The demo, the bench and the end-to-end tests all start rootloop only once the map's
sweep shows the fault, so a run never starts on a system that still looks healthy.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rootloop import topology
from rootloop.models import Status
from rootloop.skills import registry
from rootloop.skills.base import CheckContext
from rootloop.sweep import sweep


def wait_for_symptoms(map_path: Path, timeout: float = 120.0) -> float:
    """Sweep until the injected fault shows on the map: the moment an on-call engineer is
    paged. Returns the seconds it took (the timeout if nothing showed)."""
    topo = topology.load(map_path, skills=registry)
    start = time.monotonic()
    seen = 0
    while time.monotonic() - start < timeout:
        findings = asyncio.run(sweep(topo.nodes.values(), CheckContext(redactor=topo.redactor)))
        bad = any(
            f.status in (Status.CRITICAL, Status.DEGRADED, Status.UNREACHABLE) for f in findings
        )
        seen = seen + 1 if bad else 0
        if seen >= 2:  # a symptom that holds, not a blip while the fault sets in
            break
        time.sleep(2.0)
    return time.monotonic() - start
