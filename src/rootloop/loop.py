"""The loop: sweep → reason → gate → act → verify → test → PR, or escalate.

Written once, async. Every step writes the debug context before it moves on,
and an action is marked ``applying`` before its side effect and ``applied``
after, so a run killed at any moment resumes where it stopped and never applies
an action twice: an ``applying`` entry goes back to its executor, which finds
its own side effect by the action's key and finishes it (``rootloop.actions.once``).
An ending (healthy, escalated, ...) and its publication are two steps: a run
killed between them resumes into publishing. Actions run only while the run
holds its service's lease (``rootloop.lease``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from rootloop import killpoints
from rootloop.actions.gates import Gatekeeper, approval_key, land
from rootloop.actions.once import ActPath, Executor
from rootloop.actions.screen import gate_screen
from rootloop.context import ContextStore, DebugContext, HistoryEntry, PendingGate, RunStatus
from rootloop.errors import ActionRefused, ApprovalRequired
from rootloop.events import Event, EventSink
from rootloop.lease import Lease, LeaseLost
from rootloop.models import (
    Diagnosis,
    Finding,
    LoadTestResult,
    Outcome,
    PriorContext,
    Status,
    UiTestResult,
    VerifyResult,
    entry_symptoms,
    utcnow,
)
from rootloop.models.actions import ActionResult
from rootloop.reasoning.base import Proposal, Reasoner, ReasoningInput
from rootloop.reasoning.signatures import match
from rootloop.reproduce import reproduce
from rootloop.skills.base import CheckContext
from rootloop.sweep import sweep
from rootloop.topology import Topology
from rootloop.verify import judge, verify


class MemoryPort(Protocol):
    def prior(
        self, service: str, nodes: list[str], findings: list[Finding] | None = None
    ) -> PriorContext: ...


class Publisher(Protocol):
    """Opens or updates the run's pull request and writes the reports; returns where the
    result is (the PR's URL, or the report's path), or None."""

    async def publish(self, run: RunState) -> str | None: ...


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

    def report_findings(self) -> list[Finding]:
        """What the report draws: the diagnosis sweep; a run resumed after its diagnosis
        has only its verify sweep (or the sweep taken for the report)."""
        return self.findings or self.first_findings or self.verify_findings


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
    #: the service's lease, held by the runner for the whole run (None: not leased)
    lease: Lease | None = None

    # -- plumbing -----------------------------------------------------------
    def emit(self, kind: str, message: str = "", **data: Any) -> None:
        ctx = self.state.context if self.state else None
        self.events(
            Event(
                kind=kind,
                run_id=ctx.run_id if ctx else "",
                message=message,
                iteration=ctx.iteration if ctx else 0,
                data=data,
            )
        )

    @property
    def run_state(self) -> RunState:
        """The run in progress (set by ``run``; a step called outside a run is a bug)."""
        if self.state is None:
            raise RuntimeError("the loop has no run: call Loop.run first")
        return self.state

    def save(self) -> None:
        self.store.save(self.run_state.context)

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
        try:
            if context.publish_pending:
                # killed between an ending and its pull request: publishing is that step
                self.emit("progress", f"resuming into publishing ({context.status})")
                await self.publish()
                if context.status != "paused":
                    return context
            if (
                context.status in ("paused", "escalated", "refused")
                and context.pending_gate is None
            ):
                context.status, context.status_reason = "running", "resumed by a human"
            self.save()
            while context.status == "running":
                await self.iterate()
        except LeaseLost as lost:
            # another run took the service over: stop as if killed here (status "running",
            # the entry as it was), so 'rootloop resume' continues it; not an ending to publish
            context.status_reason = str(lost)
            self.save()
            self.emit("escalate", str(lost), gate="lease")
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
        if entry is not None and entry.phase == "approved":
            # killed after the human's approval was taken, before the action began
            await self.act_and_check(entry)
            return
        if entry is not None and entry.phase == "awaiting-approval":
            if not await self.after_approval(entry):
                return
            await self.act_and_check(entry)
            return

        if entry is not None and entry.phase == "diagnosed":
            # killed between reasoning and the gate: nothing ran; reason afresh
            entry.end(Outcome.INTERRUPTED, "interrupted before the gate; not run")
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
        if not ctx.entry_symptoms and not any(h.outcome and h.outcome.ran for h in ctx.history):
            # what led here: each must be good again before anything is called fixed
            ctx.entry_symptoms = entry_symptoms(findings)
            self.save()
        self.phase("sweep", "end", unhealthy=sum(f.status is not Status.OK for f in findings))

        self.phase("reason")
        proposal = await self.reason(findings)
        if proposal.action is None and proposal.diagnosis.category == "unknown":
            # one sweep is a snapshot and can miss a cause that comes and goes (a lock's
            # waiters cancelled by their statement timeout): before handing over, look once
            # more a settle period later; a signature must still hold on a sweep of its own
            self.emit("progress", "no signature holds; looking once more before escalating")
            await asyncio.sleep(self.topology.policy.settle_seconds)
            findings = st.findings = await self.sweep(since)
            proposal = await self.reason(findings)
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
            await self.nothing_wrong_now(proposal)
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
        if not await self.gate(entry):
            return
        await self.act_and_check(entry)

    async def reason(self, findings: list[Finding]) -> Proposal:
        st = self.state
        assert st is not None
        return await self.reasoner.propose(
            ReasoningInput(
                topology=self.topology,
                findings=findings,
                context=st.context,
                prior=st.prior,
                extra=await self.reasoning_extra(),
                screen=gate_screen(self.topology, st.context, st.prior),
            )
        )

    def record_usage(self) -> None:
        """Model tokens and cost, per call and per run, into the debug context."""
        ledger = self.reasoner.ledger
        if ledger is None or not ledger.calls:
            return
        totals = ledger.store(self.run_state.context)
        self.emit(
            "usage", f"{totals.total_tokens} tokens so far", totals=totals.model_dump(mode="json")
        )

    async def reasoning_extra(self) -> dict[str, Any]:
        """A model that writes code reads the run's worktree (the deployed code), not
        whatever the local clone has checked out."""
        repo = self.topology.repo
        if not self.reasoner.reads_code or repo is None or not repo.path:
            return {}
        worktree = await self.executor.worktree(self.run_state.context)
        if worktree is None:
            return {}
        return {"worktree": str(worktree), "test_command": repo.test_command}

    def phase(self, name: str, state: str = "start", **data: Any) -> None:
        self.emit("phase", f"{name} {state}", phase=name, state=state, **data)
        killpoints.hit(f"phase:{name}:{state}")

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
        ctx = self.run_state.context
        limit = self.topology.policy.no_progress_limit
        recent = ctx.history[-limit:]
        return len(recent) >= limit and all(
            h.did_not_help
            and h.diagnosis_detail is not None
            and h.diagnosis_detail.key == proposal.diagnosis.key
            and h.changed is None
            for h in recent
        )

    # -- gate -------------------------------------------------------------------
    async def gate(self, entry: HistoryEntry) -> bool:
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
            await self.publish()
            return False
        entry.end(Outcome.REFUSED, f"refused - {decision.reason}", phase="refused")
        refusing = ("production", "target", "autonomy")  # policy said no: not out of ideas
        ctx.status = "refused" if decision.gate in refusing else "escalated"
        ctx.status_reason = f"gate '{decision.gate}': {decision.reason}"
        self.save()
        self.emit("escalate", ctx.status_reason, gate=decision.gate)
        await self.publish()
        return False

    async def after_approval(self, entry: HistoryEntry) -> bool:
        ctx = self.run_state.context
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
        try:
            land(self.topology, entry.action_detail, st.context)  # after approvals and resumes too
            result = await self.act_path().act(entry.action_detail, st.context, entry)
        except (ActionRefused, ApprovalRequired) as exc:  # a gate at the landing: not a failure
            await self.stopped_at_landing(entry, exc)
            return
        self.record_result(entry, result)
        self.phase("act", "end")
        if not result.ok:
            why = result.details.get("error") or result.changed
            entry.end(Outcome.APPLY_FAILED, f"the action failed to apply: {why}")
            self.save()
            return
        if result.no_op:
            await self.after_no_op(entry, result)
            return
        await self.verify_and_test(entry)

    async def stopped_at_landing(
        self, entry: HistoryEntry, exc: ActionRefused | ApprovalRequired
    ) -> None:
        """An executor's gate said no right before the side effect: the run ends ``refused``
        (never retried), or pauses when an approval is missing (the map changed meanwhile)."""
        ctx = self.run_state.context
        if isinstance(exc, ApprovalRequired):
            entry.phase = "awaiting-approval"
            ctx.pending_gate = PendingGate(
                gate=exc.gate, reason=exc.reason, iteration=entry.iteration
            )
            ctx.status, ctx.status_reason = "paused", exc.reason
        else:
            entry.end(Outcome.REFUSED, f"refused - {exc.reason}"[:300], phase="refused")
            ctx.status, ctx.status_reason = "refused", f"gate '{exc.gate}': {exc.reason}"
        self.save()
        self.emit("escalate", ctx.status_reason, gate=exc.gate)
        await self.publish()

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
            # the executor finds what the killed run did by the action's key, finishes it
            # (a push, a deploy, the CI run) and reports the change it really made
            await self.act_and_check(entry)
            return
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
            symptoms=st.context.entry_symptoms,
            baseline=st.first_findings,
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
                failing = await self.test_until_settled()
            except Exception as exc:  # a broken test setup is a failed test, said plainly
                self.emit("note", f"tests could not run: {type(exc).__name__}: {exc}")
                # verify passed, the tests could not say: unproven, so not fixed; and not a
                # failed fix either (memory must not blacklist it): a human judges it
                entry.end(Outcome.INTERRUPTED, f"not proven: the tests could not run: {exc}")
                await self.escalate(
                    f"iteration {entry.iteration} passed verify but the load/UI tests could "
                    f"not run ({type(exc).__name__}): not claimed fixed"
                )
                return
            entry.tests = {
                k: v.model_dump(mode="json")
                for k, v in (("load", st.load_test), ("ui", st.ui_test))
                if v is not None
            }
            self.emit("test", "load and UI tests", **entry.tests)
            self.phase("test", "end")
            if failing:
                # the entry symptoms cleared (verify passed) but the service misses its
                # objectives: something else is wrong now, the next iteration looks for it
                entry.end(Outcome.NEW_FAULT, f"symptoms cleared, tests fail: {failing}")
                self.save()
                return
        entry.end(Outcome.FIXED, "fixed: every entry symptom cleared and held", phase="done")
        await self.finish("healthy", "fixed and verified: every entry symptom cleared")

    async def test_until_settled(self) -> str:
        """Run the load and UI tests like verify sweeps: a fix may need the settle window
        (a backlog draining, caches warming) before it meets the objectives, so failing
        tests run again until they pass or the verify timeout ends. "" when they pass."""
        st = self.state
        assert st is not None and self.tests is not None
        policy = self.topology.policy
        deadline = time.monotonic() + policy.verify_timeout
        while True:
            st.load_test, st.ui_test = await self.tests(self.topology)
            failed = [t for t in (st.load_test, st.ui_test) if t is not None and not t.passed]
            reasons = "; ".join(
                ", ".join(getattr(t, "reasons", []) or ["a UI step failed"]) for t in failed
            )
            if not failed or time.monotonic() >= deadline:
                return reasons
            self.emit("progress", f"tests failed ({reasons}); settling, then testing again")
            await asyncio.sleep(max(policy.settle_seconds, 1.0))

    async def after_no_op(self, entry: HistoryEntry, result: ActionResult) -> None:
        """The action changed nothing. If the symptoms are gone anyway, the system recovered
        on its own: the run says so and credits no action; otherwise it tries the next idea."""
        st = self.state
        assert st is not None
        root = (
            entry.diagnosis_detail.root_cause if entry.diagnosis_detail else self.topology.service
        )
        findings = await self.sweep(self.settle_window_start(entry.finished_at))
        verdict = judge(self.topology, findings, root, st.context.entry_symptoms, st.first_findings)
        st.verification, st.verify_findings = verdict, findings
        entry.verification = verdict.model_dump(mode="json")
        what = f"changed nothing: {result.changed}"
        if verdict.passed:
            entry.end(Outcome.RECOVERED_WITHOUT_FIX, f"{what}; the symptoms cleared anyway")
            await self.finish("recovered", self.recovered_reason())
            return
        entry.end(Outcome.NO_OP, what)
        self.save()

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
            entry.end(Outcome.SAME_FAULT, f"still {same[0].summary}")
        elif hits:
            new = max(hits, key=lambda h: h.specificity)
            entry.end(Outcome.NEW_FAULT, f"new error: {new.summary}")
        else:
            # no signature names it: a new fault when the diagnosed node is healthy again
            # and something that was fine when the run began is bad now
            st = self.state
            assert st is not None
            was_bad = {f.node for f in st.first_findings if f.status in UNHEALTHY}
            was_bad |= {s.node for s in st.context.entry_symptoms}  # kept across a resume
            bad = [f for f in findings if f.status in UNHEALTHY]
            newly = [f for f in bad if f.node not in was_bad]
            root = before.root_cause if before else self.topology.service
            root_bad = [f for f in bad if self.component(f.node) == root]
            if newly and not root_bad:
                entry.end(Outcome.NEW_FAULT, f"new error: {newly[0].node}: {newly[0].summary}")
            else:
                worst_first = sorted(bad, key=lambda f: -f.status.severity)
                entry.end(
                    Outcome.SAME_FAULT,
                    f"{worst_first[0].node}: {worst_first[0].summary}"
                    if worst_first
                    else "not verified in time",
                )
        self.save()

    def component(self, node: str) -> str:
        found = self.topology.nodes.get(node)
        return found.component if found else node

    # -- endings -------------------------------------------------------------------
    async def nothing_wrong_now(self, proposal: Proposal) -> None:
        """The sweep finds nothing wrong. That alone proves nothing: before any iteration
        the complaint may simply not show in the checks; after failed ones the system got
        better without a verified fix. Neither is "healthy"."""
        st = self.state
        assert st is not None
        ctx = st.context
        # the report explains the run's fault, not the quiet sweep that ended it
        last = ctx.history[-1] if ctx.history else None
        st.diagnosis = last.diagnosis_detail if last else None
        if last is not None:
            # each entry symptom as this sweep sees it: the evidence of the recovery
            root = st.diagnosis.root_cause if st.diagnosis else self.topology.service
            st.verification = judge(
                self.topology, st.findings, root, ctx.entry_symptoms, st.first_findings
            )
            await self.finish("recovered", self.recovered_reason())
            return
        self.phase("test")
        found = await reproduce(self.topology, ctx.alert, self.tests)
        self.phase("test", "end")
        st.load_test, st.ui_test = found.load, found.ui
        checked = [f"swept {len(st.findings)} checks: none bad", *found.checked]
        ctx.reproduction = checked
        if found.reproduced:
            await self.escalate(
                "the complaint reproduces but no check names a cause: "
                + "; ".join(found.reproduced),
                proposal,
            )
            return
        await self.finish("not-reproduced", "not reproduced: " + "; ".join(checked))

    def recovered_reason(self) -> str:
        ctx = self.run_state.context
        tried = ", ".join(
            f"iteration {h.iteration} {h.outcome.value if h.outcome else 'unfinished'}"
            for h in ctx.history
        )
        return (
            f"recovered without a fix: the symptoms cleared, not credited to any action ({tried})"
        )

    async def finish(self, status: RunStatus, reason: str) -> None:
        ctx = self.run_state.context
        ctx.status, ctx.status_reason = status, reason
        self.save()
        await self.publish()

    async def escalate(self, reason: str, proposal: Proposal | None = None) -> None:
        ctx = self.run_state.context
        ctx.status, ctx.status_reason = "escalated", reason
        if proposal is not None and proposal.diagnosis.candidates:
            ctx.suspects = proposal.diagnosis.candidates[:3]
        self.save()
        self.emit("escalate", reason, suspects=[c.model_dump(mode="json") for c in ctx.suspects])
        await self.publish()

    def act_path(self) -> ActPath:
        """The gate-passed action's one way to the world, shared with the MCP server."""
        return ActPath(
            executor=self.executor,
            save=self.save,
            show=lambda m: self.emit("progress", m),
            redactor=self.topology.redactor,
            lease=self.lease,
        )

    async def publish(self) -> None:
        """Publish this ending (a step of its own: ``ctx.publish_pending`` until it is done,
        so a run killed in between resumes into it). Publishing twice updates one PR."""
        if self.publisher is None or self.state is None:
            return
        st = self.state
        ctx = st.context
        self.phase("pr")
        if not st.report_findings():
            # a resumed process that went straight to its ending has swept nothing: one
            # read-only sweep, so the report shows the service as it is now rather than
            # every node "not checked" (the ending itself was decided before, and stays)
            self.emit("progress", "sweeping once for the report (this process swept nothing)")
            st.findings = await self.sweep()
        try:
            where = await self.publisher.publish(st)
        except Exception as exc:  # the PR is the report; failing to open it must be visible
            self.emit("note", f"could not open the PR: {type(exc).__name__}: {exc}")
            self.phase("pr", "end")
            return
        if where:
            ctx.pr = where
        ctx.published = ctx.ending()
        self.save()
        if where:
            self.emit("pr", where, location=where, branch=ctx.branch)
        self.phase("pr", "end")


UNHEALTHY = (Status.DEGRADED, Status.CRITICAL, Status.UNREACHABLE)


__all__ = ["Executor", "Loop", "Publisher", "RunState", "judge"]
