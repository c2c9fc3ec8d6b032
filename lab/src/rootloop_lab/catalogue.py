"""The lab's own scenario pack, registered like any other (``rootloop.scenarios`` = ``lab``).

The first scenarios live in ``rootloop_lab.scenarios``; newer ones in modules of their
own (``rootloop_lab.faults_*``), each exporting ``SCENARIOS: list[PackScenario]``.
"""

from __future__ import annotations

from rootloop_lab import scenarios as first
from rootloop_lab.packs import PackScenario


def lab_pack() -> list[PackScenario]:
    """Every scenario of the lab's catalogue, in the order the bench runs them."""
    out = []
    for name, truth in first.SCENARIOS.items():
        key = "pg-connection-hog" if name == "production" else name
        out.append(
            PackScenario(truth, first._INJECTORS[key], first.with_payments(first._PROBES[key]))
        )
    for module in _newer_modules():
        out.extend(module.SCENARIOS)
    return out


def _newer_modules() -> list:
    from rootloop_lab import (
        faults_capacity,
        faults_deploys,
        faults_lambda,
        faults_latency,
        faults_limits,
    )

    return [faults_limits, faults_latency, faults_deploys, faults_lambda, faults_capacity]
