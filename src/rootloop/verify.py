"""The verify phase: the seed's verifiers over a fresh sweep, held over a settle window.

A fix counts only when, in two sweeps ``settle_seconds`` apart: every entry symptom
of the run (each bad signal that started it) is good again, the root-cause
component's checks are healthy, the service's own checks are healthy (tasks
stable, error rate under the threshold), PostgreSQL shows no blocking queries,
nothing that was healthy when the run began is bad now, and nothing on the map
is critical. Whether the action changed anything is the loop's question: a
passing verify after a no-op is a recovery, not a fix.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from rootloop.models import Check, Finding, Status, Symptom, VerifyResult
from rootloop.topology import Topology

Sweeper = Callable[[], Awaitable[list[Finding]]]

#: a fault seen in the first seconds after a deploy may be the old tasks draining: the
#: early end of a verify for a persisting fault only counts sweeps after this grace
GRACE_SECONDS = 15.0


def judge(
    topo: Topology,
    findings: list[Finding],
    root: str,
    symptoms: Sequence[Symptom] = (),
    baseline: Sequence[Finding] = (),
) -> VerifyResult:
    """The verdict on one sweep. ``symptoms``: the run's entry symptoms, each must be
    cleared; ``baseline``: the run's first sweep, against which "newly bad" is judged."""
    by_component: dict[str, list[Finding]] = {}
    for f in findings:
        node = topo.nodes.get(f.node)
        by_component.setdefault(node.component if node else f.node, []).append(f)

    def healthy(component: str) -> tuple[bool, str]:
        bad = [
            f
            for f in by_component.get(component, [])
            if f.status is not Status.OK and f.status is not Status.UNKNOWN
        ]
        return (not bad, "; ".join(f"{f.node}: {f.summary}" for f in bad) or "all checks ok")

    checks = []
    ok, detail = healthy(root)
    checks.append(Check(name=f"root cause {root} healthy", passed=ok, detail=detail))
    if root != topo.service:
        ok, detail = healthy(topo.service)
        checks.append(Check(name=f"{topo.service} healthy", passed=ok, detail=detail))
    for f in findings:
        if f.skill == "aws-ecs":
            checks.append(
                Check(
                    name=f"tasks stable ({f.node})", passed=f.status is Status.OK, detail=f.summary
                )
            )
        if f.skill == "cloudwatch-logs":
            rate = f.value("error_rate")
            th = topo.policy.error_rate_threshold
            passed = f.status is Status.OK or (isinstance(rate, int | float) and rate <= th)
            checks.append(
                Check(
                    name="error rate under threshold",
                    passed=passed,
                    detail=f"{rate} (threshold {th})" if rate is not None else f.summary,
                )
            )
        if f.skill == "postgres":
            blocked = f.value("blocked_sessions") or 0
            checks.append(
                Check(
                    name="no blocking queries",
                    passed=not blocked,
                    detail=f"{blocked} blocked session(s)",
                )
            )
    for sym in symptoms:
        cleared, now = sym.cleared_in(findings)
        checks.append(
            Check(
                name=f"entry symptom cleared: {sym.label}",
                passed=cleared,
                detail=f"now {now}",
                symptom=True,
            )
        )
    if baseline or symptoms:
        # bad at the start: an entry symptom, or bad in the first sweep (that sweep is not
        # kept across a resume; the symptoms are)
        was_bad = {s.node for s in symptoms} | {
            f.node for f in baseline if f.status not in (Status.OK, Status.UNKNOWN)
        }
        newly = [
            f
            for f in findings
            if f.node not in was_bad and f.status not in (Status.OK, Status.UNKNOWN)
        ]
        checks.append(
            Check(
                name="nothing newly bad",
                passed=not newly,
                detail="; ".join(f"{f.node}: {f.summary}" for f in newly) or "none",
            )
        )
    critical = [f for f in findings if f.status is Status.CRITICAL]
    checks.append(
        Check(
            name="nothing critical on the map",
            passed=not critical,
            detail=", ".join(f.node for f in critical) or "none",
        )
    )
    return VerifyResult(passed=all(c.passed for c in checks), checks=checks)


async def verify(
    topo: Topology,
    sweeper: Sweeper,
    root: str,
    *,
    on_progress: Callable[[str], None] | None = None,
    still_failing: Callable[[list[Finding]], bool] | None = None,
    symptoms: Sequence[Symptom] = (),
    baseline: Sequence[Finding] = (),
) -> tuple[VerifyResult, list[Finding]]:
    """Sweep until the verdict passes twice in a row, or the verify timeout runs out.

    ``still_failing`` ends the wait early: when a specific fault (the one the action was
    meant to fix, or one it exposed) shows in three sweeps in a row, waiting longer will
    not turn it into a pass.
    """
    started = time.monotonic()
    deadline = started + topo.policy.verify_timeout
    passes = relapses = 0
    while True:
        findings = await sweeper()
        result = judge(topo, findings, root, symptoms, baseline)
        passes = passes + 1 if result.passed else 0
        settled = time.monotonic() - started >= GRACE_SECONDS
        relapses = relapses + 1 if settled and still_failing and still_failing(findings) else 0
        if passes >= 2 or relapses >= 3 or time.monotonic() >= deadline:
            return result, findings
        if on_progress:
            failing = [c.name for c in result.checks if not c.passed]
            on_progress(
                "verified once, settling" if result.passed else f"waiting for: {', '.join(failing)}"
            )
        await asyncio.sleep(topo.policy.settle_seconds)
