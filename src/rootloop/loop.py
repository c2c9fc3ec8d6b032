"""The loop: sweep → reason → gate → act → verify → test → PR, or escalate.

Written once, async. Every step writes the debug context before it moves on,
and an action is marked ``applying`` before its side effect and ``applied``
after, so a run killed at any moment resumes where it stopped and never applies
an action twice (an ``applying`` entry is probed, not re-run).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from rootloop.actions.gates import Gatekeeper, approval_key, land
from rootloop.actions.types import ActionResult, BaseAction
from rootloop.context import ContextStore, DebugContext, HistoryEntry, PendingGate
from rootloop.errors import ActionRefused, ApprovalRequired
from rootloop.events import Event, EventSink
from rootloop.models import (
    Diagnosis,
    Finding,
    LoadTestResult,
    PriorContext,
    Status,
    UiTestResult,
    VerifyResult,
    utcnow,
)
from rootloop.reasoning.base import Proposal, Reasoner, ReasoningInput
from rootloop.reasoning.signatures import match
from rootloop.redact import carries_mask
from rootloop.skills.base import CheckContext
from rootloop.sweep import sweep
from rootloop.topology import Topology
from rootloop.verify import judge, verify


class Executor(Protocol):
    """Carries out allowed actions on the real world (see ``rootloop.actions.dispatch``)."""

    async def apply(
        self,
        action: BaseAction,
        ctx: DebugContext,
        entry: HistoryEntry,
        progress: Callable[[str], None],
    ) -> ActionResult: ...

    async def already_applied(
        self, action: BaseAction, ctx: DebugContext, entry: HistoryEntry
    ) -> bool: ...


class MemoryPort(Protocol):
    def prior(
        self, service: str, nodes: list[str], findings: list[Finding] | None = None
    ) -> PriorContext: ...


class Publisher(Protocol):
    """Opens or updates the run's pull request and writes the reports."""

    def publish(self, run: RunState) -> str | None: ...


@dataclass
class RunState:
    """What the loop knows about a run beyond the persisted context."""

    topology: Topology
    context: DebugContext
    findings: list[Finding] = field(default_factory=list)
    diagnosis: Diagnosis | None = None
    verification: VerifyResult | None = None
    load_test: LoadTestResult | None = None
    ui_test: UiTestResult | None = None
    prior: PriorContext = field(default_factory=PriorContext)
    first_findings: list[Finding] = field(default_factory=list)
    verify_findings: list[Finding] = field(default_factory=list)


TestRunner = Callable[[Topology], Awaitable[tuple[LoadTestResult | None, UiTestResult | None]]]


@dataclass
class Loop:
    topology: Topology
    store: ContextStore
    reasoner: Reasoner
    executor: Executor
    events: EventSink
    memory: MemoryPort | None = None
    publisher: Publisher | None = None
    tests: TestRunner | None = None
    state: RunState | None = None

    # -- plumbing -----------------------------------------------------------
    def emit(self, kind: str, message: str = "", **data: Any) -> None:
        ctx = self.state.context if self.state else None
        self.events(
            Event(
                kind=kind,
                run_id=ctx.run_id if ctx else "",
                message=message,  # type: ignore[arg-type]
                iteration=ctx.iteration if ctx else 0,
                data=data,
            )
        )

    def save(self) -> None:
        assert self.state is not None
        self.store.save(self.state.context)

    async def sweep(self, since: datetime | None = None) -> list[Finding]:
        topo = self.topology
        ctx = CheckContext(redactor=topo.redactor, window_start=since)
        return await sweep(
            topo.nodes.values(),
            ctx,
            concurrency=topo.policy.concurrency,
            on_done=lambda _n, f: self.emit("finding", **f.model_dump(mode="json")),
        )

    # -- entry points ---------------------------------------------------------
    async def run(self, context: DebugContext) -> DebugContext:
        self.state = RunState(topology=self.topology, context=context)
        resumed = bool(context.history)
        self.emit(
            "run-start",
            f"investigating {context.service}",
            service=context.service,
            environment=self.topology.environment,
            resumed=resumed,
            topology_file=context.topology_file,
        )
        if context.status in ("paused", "escalated", "refused") and context.pending_gate is None:
            context.status, context.status_reason = "running", "resumed by a human"
        self.save()
        try:
            while context.status == "running":
                await self.iterate()
        finally:
            self.emit("run-end", context.status_reason, status=context.status)
        return context

    # -- one iteration ----------------------------------------------------------
    async def iterate(self) -> None:
        st = self.state
        assert st is not None
        ctx = st.context
        entry = ctx.current
        if entry is not None and entry.phase in ("applying", "applied"):
            await self.resume_entry(entry)
            return
        if entry is not None and entry.phase == "awaiting-approval":
            if not await self.after_approval(entry):
                return
            await self.act_and_check(entry)
            return

        if entry is not None and entry.phase == "diagnosed":
            # killed between reasoning and the gate: nothing ran; reason afresh
            entry.phase, entry.result = "failed", "interrupted before the gate; not run"
            entry.finished_at = utcnow()
            self.save()
        since = self.last_action_time()
        self.phase("sweep")
        if st.verify_findings and entry is not None and entry.failed:
            # the failed verify's last sweep is fresh, and it saw the fault come back; a
            # sweep now could catch the service mid-restart and see only "unreachable"
            findings, st.verify_findings = st.verify_findings, []
        else:
            findings = await self.sweep(since)
        st.findings = findings
        if not st.first_findings:
            st.first_findings = findings
            self.load_prior(findings)
        self.phase("sweep", "end", unhealthy=sum(f.status is not Status.OK for f in findings))

        self.phase("reason")
        proposal = await self.reasoner.propose(
            ReasoningInput(
                topology=self.topology,
                findings=findings,
                context=ctx,
                prior=st.prior,
                extra=await self.reasoning_extra(),
            )
        )
        st.diagnosis = proposal.diagnosis
        self.record_usage()
        self.emit(
            "diagnosis",
            proposal.diagnosis.summary,
            **proposal.diagnosis.model_dump(mode="json"),
            rationale=proposal.rationale,
            action=proposal.action.describe() if proposal.action else None,
        )
        self.phase("reason", "end")

        if proposal.diagnosis.category == "healthy":
            if ctx.history and ctx.history[-1].result.startswith("fail"):
                # the last fix needed time; the service is healthy now
                ctx.history[-1].result = "pass - healthy after settling"
            await self.finish_healthy("every node is healthy")
            return
        if proposal.action is None:
            await self.escalate(proposal.escalate_reason or "no action proposed", proposal)
            return
        if self.no_progress(proposal):
            await self.escalate(
                f"no progress: '{proposal.diagnosis.summary}' persisted through "
                f"{self.topology.policy.no_progress_limit} fixes",
                proposal,
            )
            return
        if ctx.iteration >= self.topology.policy.max_iterations:
            await self.escalate(f"iteration budget spent ({ctx.iteration} iterations)", proposal)
            return

        ctx.iteration += 1
        entry = HistoryEntry(
            iteration=ctx.iteration,
            diagnosis=proposal.diagnosis.summary,
            action=proposal.action.describe(),
            diagnosis_detail=proposal.diagnosis,
            action_detail=proposal.action,
            action_fingerprint=proposal.action.fingerprint(),
            rung=proposal.rung,
        )
        ctx.history.append(entry)
        self.save()
        if not self.gate(entry):
            return
        await self.act_and_check(entry)

    def record_usage(self) -> None:
        """Model tokens and cost, per call and per run, into the debug context."""
        ledger = getattr(self.reasoner, "ledger", None)
        if ledger is None or not getattr(ledger, "calls", None):
            return
        totals = ledger.store(self.state.context)  # type: ignore[union-attr]
        self.emit(
            "usage", f"{totals.total_tokens} tokens so far", totals=totals.model_dump(mode="json")
        )

    async def reasoning_extra(self) -> dict[str, Any]:
        """A model that writes code reads the run's worktree (the deployed code), not
        whatever the local clone has checked out."""
        repo = self.topology.repo
        if getattr(self.reasoner, "name", "rules") == "rules" or repo is None or not repo.path:
            return {}
        state_root = getattr(self.executor, "state_root", None)
        if state_root is None:
            return {}
        from rootloop.actions.code import CodeFix

        ws = CodeFix.workspace_for(self.topology, self.state.context, state_root)  # type: ignore[union-attr]
        await asyncio.to_thread(ws.open)
        return {"worktree": str(ws.path), "test_command": repo.test_command}

    def phase(self, name: str, state: str = "start", **data: Any) -> None:
        self.emit("phase", f"{name} {state}", phase=name, state=state, **data)

    def load_prior(self, findings: list[Finding]) -> None:
        st = self.state
        assert st is not None
        if self.memory is None:
            return
        components = list(self.topology.graph.nodes)
        st.prior = self.memory.prior(self.topology.service, components, findings)
        self.emit("prior", "previous context", **st.prior.model_dump(mode="json"))

    def last_action_time(self) -> datetime | None:
        ctx = self.state.context if self.state else None
        done = [
            h.finished_at or h.started_at
            for h in (ctx.history if ctx else [])
            if h.phase in ("applied", "verified", "done", "failed")
        ]
        return max(done) if done else None

    def settle_window_start(self, since: datetime | None) -> datetime | None:
        """Verify judges the recent past only: errors logged while the old tasks drained
        must not fail a fix forever, only errors that keep coming."""
        window = timedelta(seconds=max(10.0, 3 * self.topology.policy.settle_seconds))
        recent = utcnow() - window
        return recent if since is None or recent > since else since

    def no_progress(self, proposal: Proposal) -> bool:
        ctx = self.state.context  # type: ignore[union-attr]
        limit = self.topology.policy.no_progress_limit
        recent = ctx.history[-limit:]
        return len(recent) >= limit and all(
            h.failed
            and h.diagnosis_detail is not None
            and h.diagnosis_detail.key == proposal.diagnosis.key
            and h.changed is None
            for h in recent
        )

    # -- gate -------------------------------------------------------------------
    def gate(self, entry: HistoryEntry) -> bool:
        st = self.state
        assert st is not None and entry.action_detail is not None
        ctx = st.context
        self.phase("gate")
        key = entry.diagnosis_detail.key if entry.diagnosis_detail else None
        decision = Gatekeeper(self.topology).check(entry.action_detail, ctx, key, st.prior)
        self.emit(
            "gate",
            decision.reason or "allowed",
            gate=decision.gate or "all",
            decision=decision.decision,
            action=entry.action,
        )
        if decision.decision == "allow":
            return True
        if decision.decision == "approval":
            entry.phase = "awaiting-approval"
            ctx.pending_gate = PendingGate(
                gate=decision.gate, reason=decision.reason, iteration=entry.iteration
            )
            ctx.status, ctx.status_reason = "paused", decision.reason
            self.save()
            self.emit("escalate", decision.reason, gate=decision.gate)
            self.publish()
            return False
        entry.phase = "refused"
        entry.result = f"refused - {decision.reason}"
        entry.finished_at = utcnow()
        refusing = ("production", "target", "autonomy")  # policy said no: not out of ideas
        ctx.status = "refused" if decision.gate in refusing else "escalated"
        ctx.status_reason = f"gate '{decision.gate}': {decision.reason}"
        self.save()
        self.emit("escalate", ctx.status_reason, gate=decision.gate)
        self.publish()
        return False

    async def after_approval(self, entry: HistoryEntry) -> bool:
        ctx = self.state.context  # type: ignore[union-attr]
        assert entry.action_detail is not None and ctx.pending_gate is not None
        if approval_key(ctx.pending_gate.gate, entry.action_detail) not in ctx.approvals:
            ctx.status = "paused"
            ctx.status_reason = ctx.pending_gate.reason
            self.save()
            return False
        self.emit(
            "gate",
            f"approved by a human: {ctx.pending_gate.gate}",
            gate=ctx.pending_gate.gate,
            decision="allow",
            action=entry.action,
        )
        ctx.pending_gate = None
        entry.phase = "approved"
        self.save()
        return True

    # -- act, verify, test ---------------------------------------------------------
    async def act_and_check(self, entry: HistoryEntry) -> None:
        st = self.state
        assert st is not None and entry.action_detail is not None
        self.phase("act")
        entry.phase = "applying"
        self.save()
        try:
            if carries_mask(entry.action_detail.model_dump(mode="json")):
                raise ValueError(
                    "the action holds a secret that was redacted when the run was saved"
                )
            land(self.topology, entry.action_detail, st.context)  # after approvals and resumes too
            result = await self.executor.apply(
                entry.action_detail, st.context, entry, lambda m: self.emit("progress", m)
            )
        except (ActionRefused, ApprovalRequired) as exc:  # a gate at the landing: not a failure
            self.stopped_at_landing(entry, exc)
            return
        except Exception as exc:  # the platform failed: record it, try the next idea
            result = ActionResult(
                ok=False,
                changed="",
                details={"error": self.topology.redactor.text(f"{type(exc).__name__}: {exc}")},
            )
        self.record_result(entry, result)
        self.phase("act", "end")
        if not result.ok:
            entry.phase = "failed"
            entry.result = f"fail - the action failed: {result.details.get('error', '')}"[:300]
            entry.finished_at = utcnow()
            self.save()
            return
        await self.verify_and_test(entry)

    def stopped_at_landing(
        self, entry: HistoryEntry, exc: ActionRefused | ApprovalRequired
    ) -> None:
        """An executor's gate said no right before the side effect: the run ends ``refused``
        (never retried), or pauses when an approval is missing (the map changed meanwhile)."""
        ctx = self.state.context  # type: ignore[union-attr]
        if isinstance(exc, ApprovalRequired):
            entry.phase = "awaiting-approval"
            ctx.pending_gate = PendingGate(
                gate=exc.gate, reason=exc.reason, iteration=entry.iteration
            )
            ctx.status, ctx.status_reason = "paused", exc.reason
        else:
            entry.phase, entry.result = "refused", f"refused - {exc.reason}"[:300]
            entry.finished_at = utcnow()
            ctx.status, ctx.status_reason = "refused", f"gate '{exc.gate}': {exc.reason}"
        self.save()
        self.emit("escalate", ctx.status_reason, gate=exc.gate)
        self.publish()

    def record_result(self, entry: HistoryEntry, result: ActionResult) -> None:
        entry.changed = result.changed or None
        entry.undo = result.undo or None
        entry.commit = result.commit or entry.commit
        entry.gha = result.details.get("gha", entry.gha)
        entry.phase = "applied" if result.ok else "failed"
        entry.finished_at = utcnow()
        self.save()
        self.emit(
            "action",
            result.changed or entry.action,
            action=entry.action,
            result=result.model_dump(mode="json"),
        )

    async def resume_entry(self, entry: HistoryEntry) -> None:
        """Continue an iteration that a killed run left between act and verify."""
        st = self.state
        assert st is not None and entry.action_detail is not None
        if entry.phase == "applying":
            done = await self.executor.already_applied(entry.action_detail, st.context, entry)
            self.emit(
                "progress",
                "resuming: the action was " + ("already applied" if done else "not applied yet"),
            )
            if not done:
                await self.act_and_check(entry)
                return
            entry.phase = "applied"
            entry.changed = entry.changed or "applied before the run was interrupted"
            self.save()
        await self.verify_and_test(entry)

    async def verify_and_test(self, entry: HistoryEntry) -> None:
        st = self.state
        assert st is not None
        self.phase("verify")
        root = (
            entry.diagnosis_detail.root_cause if entry.diagnosis_detail else self.topology.service
        )
        since = entry.finished_at

        def relapsed(fs: list[Finding]) -> bool:
            """A specific fault signature (the old one or a new one) is showing."""
            return any(h.specificity >= 0.6 for h in match(fs, self.topology))

        result, findings = await verify(
            self.topology,
            lambda: self.sweep(self.settle_window_start(since)),
            root,
            on_progress=lambda m: self.emit("progress", m),
            still_failing=relapsed,
        )
        st.verification, st.verify_findings = result, findings
        entry.verification = result.model_dump(mode="json")
        self.emit(
            "verify", "passed" if result.passed else "failed", **result.model_dump(mode="json")
        )
        self.phase("verify", "end")
        if not result.passed:
            self.fail(entry, findings)
            return
        if self.tests is not None:
            self.phase("test")
            try:
                st.load_test, st.ui_test = await self.tests(self.topology)
            except Exception as exc:  # a broken test setup is a failed test, said plainly
                self.emit("note", f"tests could not run: {type(exc).__name__}: {exc}")
                entry.result = f"fail - tests could not run: {exc}"[:300]
                entry.phase = "failed"
                entry.finished_at = utcnow()
                self.save()
                return
            entry.tests = {
                k: v.model_dump(mode="json")
                for k, v in (("load", st.load_test), ("ui", st.ui_test))
                if v is not None
            }
            self.emit("test", "load and UI tests", **entry.tests)
            self.phase("test", "end")
            failed = [t for t in (st.load_test, st.ui_test) if t is not None and not t.passed]
            if failed:
                reasons = "; ".join(
                    ", ".join(getattr(t, "reasons", []) or ["a UI step failed"]) for t in failed
                )
                entry.result = f"fail - tests: {reasons}"[:300]
                entry.phase = "failed"
                entry.finished_at = utcnow()
                self.save()
                return
        entry.result = "pass"
        entry.phase = "done"
        entry.finished_at = utcnow()
        await self.finish_healthy("verified and tested")

    def fail(self, entry: HistoryEntry, findings: list[Finding]) -> None:
        """Describe a failed fix the seed's way: still the same problem, or a new one."""
        hits = match(findings, self.topology)
        before = entry.diagnosis_detail
        same = [
            h
            for h in hits
            if before and h.category == before.category and h.component == before.root_cause
        ]
        if same:
            entry.result = f"fail - still {same[0].summary}"
        elif hits:
            new = max(hits, key=lambda h: h.specificity)
            entry.result = f"fail - new error: {new.summary}"
        else:
            bad = [f for f in findings if f.status is not Status.OK]
            entry.result = "fail - " + (
                f"{bad[0].node}: {bad[0].summary}" if bad else "not verified in time"
            )
        entry.result = entry.result[:300]
        entry.phase = "failed"
        entry.finished_at = utcnow()
        self.save()

    # -- endings -------------------------------------------------------------------
    async def finish_healthy(self, reason: str) -> None:
        ctx = self.state.context  # type: ignore[union-attr]
        ctx.status, ctx.status_reason = "healthy", reason
        self.save()
        self.publish()

    async def escalate(self, reason: str, proposal: Proposal | None = None) -> None:
        ctx = self.state.context  # type: ignore[union-attr]
        ctx.status, ctx.status_reason = "escalated", reason
        self.save()
        self.emit("escalate", reason)
        self.publish()

    def publish(self) -> None:
        if self.publisher is None or self.state is None:
            return
        self.phase("pr")
        try:
            where = self.publisher.publish(self.state)
        except Exception as exc:  # the PR is the report; failing to open it must be visible
            where = None
            self.emit("note", f"could not open the PR: {type(exc).__name__}: {exc}")
        if where:
            self.state.context.pr = where
            self.save()
            self.emit("pr", where, location=where, branch=self.state.context.branch)
        self.phase("pr", "end")


def run_sync(loop: Loop, context: DebugContext) -> DebugContext:
    return asyncio.run(loop.run(context))


__all__ = ["Executor", "Loop", "Publisher", "RunState", "judge", "run_sync"]
