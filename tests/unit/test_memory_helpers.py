"""Builders of real debug contexts for the memory tests (no tests here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rootloop.actions.types import BaseAction, ForceDeployment, SetTaskResources
from rootloop.context import DebugContext, HistoryEntry
from rootloop.models import Diagnosis, Evidence, Finding, Outcome, Signal, Status

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def oom_diagnosis(service: str = "checkout") -> Diagnosis:
    return Diagnosis(
        root_cause=service,
        category="oom",
        summary=f"{service} tasks are OOMKilled (exit 137) at the 1024 MiB limit",
        confidence=0.86,
        evidence=["stopped reason: OutOfMemoryError: Container killed due to memory usage"],
        path=["web", service],
    )


def entry(
    iteration: int, diagnosis: Diagnosis, action: BaseAction, result: str, **kw: object
) -> HistoryEntry:
    return HistoryEntry(
        iteration=iteration,
        diagnosis=diagnosis.summary,
        action=action.describe(),
        result=result,
        outcome=Outcome.SAME_FAULT if result.startswith("fail") else Outcome.FIXED,
        phase="failed" if result.startswith("fail") else "done",
        diagnosis_detail=diagnosis,
        action_detail=action,
        action_fingerprint=action.fingerprint(),
        **kw,
    )


def oom_run(
    run_id: str = "20261120-090000-aaaa",
    service: str = "checkout",
    started: datetime = T0,
    fixed: bool = True,
) -> tuple[DebugContext, list[Finding], BaseAction]:
    """Restart (fails: still OOMKilled), then memory 2048 (fixes it when ``fixed``)."""
    d = oom_diagnosis(service)
    restart = ForceDeployment(target=service, cluster="lower", service=service)
    bigger = SetTaskResources(target=service, cluster="lower", service=service, memory=2048)
    history = [entry(1, d, restart, "failed: tasks still OOMKilled after restart")]
    if fixed:
        history.append(entry(2, d, bigger, "success: 0 restarts in 10 min", commit="abc1234def"))
    ctx = DebugContext(
        service=service,
        run_id=run_id,
        iteration=len(history),
        history=history,
        status="healthy" if fixed else "escalated",
        status_reason="" if fixed else "no progress after 1 iteration",
        started_at=started,
        pr="https://github.example/acme/checkout/pull/7" if fixed else None,
    )
    findings = [
        Finding(
            node=service,
            skill="aws-ecs",
            status=Status.CRITICAL,
            summary="3 tasks stopped with OOMKilled in 15 min",
            signals=[
                Signal(name="stopped_oom", value=3, threshold=0, status=Status.CRITICAL),
                Signal(name="memory", value=1024, unit="MiB"),
            ],
            evidence=[Evidence(kind="event", title="stopped task", text="exit code 137")],
        ),
        Finding(
            node="web",
            skill="http-health",
            status=Status.DEGRADED,
            summary="5xx rate 12% on /cart",
            signals=[Signal(name="error_rate", value=0.12, threshold=0.05, status=Status.DEGRADED)],
        ),
        Finding(node="orders-db", skill="postgres", status=Status.OK, summary="healthy"),
    ]
    return ctx, findings, restart


def lock_run(
    run_id: str, service: str = "orders", started: datetime = T0
) -> tuple[DebugContext, list[Finding]]:
    from rootloop.actions.types import TerminateBackend

    d = Diagnosis(
        root_cause="orders-db",
        category="blocking-lock",
        confidence=0.8,
        summary="a session idle in transaction holds a lock on orders",
        path=[service, "orders-db"],
    )
    kill = TerminateBackend(target="orders-db", state="idle in transaction")
    ctx = DebugContext(
        service=service,
        run_id=run_id,
        iteration=1,
        status="healthy",
        started_at=started,
        history=[entry(1, d, kill, "success: no blockers")],
    )
    findings = [
        Finding(
            node="orders-db",
            skill="postgres",
            status=Status.CRITICAL,
            summary="pid 4242 blocks 17 sessions for 300 s",
            signals=[
                Signal(name="blocked_sessions", value=17, threshold=0, status=Status.CRITICAL)
            ],
        )
    ]
    return ctx, findings


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
