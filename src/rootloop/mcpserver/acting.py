"""The acting tools behind ``--allow-actions``: every action still passes every gate.

``apply_gated`` asks the gatekeeper first; a refusal or an approval request is
the tool's answer, and nothing runs. An allowed action is recorded in a debug
context before and after it runs (a new run, or the one named), so it is
audited, shows in ``rootloop status``, and is never repeated after it failed.
It acts through the loop's own path (``rootloop.actions.once.ActPath``): under
the lease of the service and environment, exactly once by the action's key.
"""

from __future__ import annotations

from pathlib import Path

from rootloop.actions.gates import Gatekeeper
from rootloop.context import ContextStore, DebugContext, HistoryEntry, PendingGate
from rootloop.errors import ActionRefused, ApprovalRequired, RootloopError, UserError
from rootloop.mcpserver.toolbox import ActionOutcome, InvestigationResult
from rootloop.models import Outcome, utcnow
from rootloop.models.actions import BaseAction
from rootloop.topology import Topology

VIA = "manual action through the MCP server"


async def apply_gated(
    action: BaseAction,
    topo: Topology,
    map_path: Path,
    store: ContextStore,
    state_root: Path,
    run_id: str | None,
) -> ActionOutcome:
    if run_id:
        ctx = store.load(run_id)
        if ctx.service != topo.service:
            raise UserError(f"run {run_id} is for '{ctx.service}', not '{topo.service}'")
    else:
        ctx = DebugContext(
            service=topo.service,
            environment=topo.environment,
            topology_file=str(map_path),
            status="paused",
            status_reason=VIA,
        )
    described = action.describe()
    decision = Gatekeeper(topo).check(action, ctx)
    if decision.decision == "refuse":
        return ActionOutcome(
            decision="refuse",
            applied=False,
            gate=decision.gate,
            reason=decision.reason,
            action=described,
            run_id=run_id,
        )
    if decision.decision == "approval":
        _record_pending(ctx, action, decision.gate, decision.reason)
        store.save(ctx)
        return ActionOutcome(
            decision="approval",
            applied=False,
            gate=decision.gate,
            reason=decision.reason,
            action=described,
            run_id=ctx.run_id,
            next_step=(
                f"a human approves with: rootloop approve {ctx.run_id} --gate {decision.gate} "
                f"--no-resume; then call apply_action again with run_id={ctx.run_id}"
            ),
        )
    from rootloop.actions.dispatch import Dispatcher
    from rootloop.actions.once import ActPath
    from rootloop.lease import Lease, LeaseHeld

    lease = Lease(state_root, topo.service, topo.environment, ctx.run_id)
    try:
        lease.acquire()
    except LeaseHeld as held:
        return ActionOutcome(
            decision="refuse",
            applied=False,
            gate="lease",
            reason=str(held),
            action=described,
            run_id=run_id,
        )
    try:
        entry = _entry_for(ctx, action)
        ctx.pending_gate = None
        path = ActPath(
            executor=Dispatcher(topo, state_root),
            save=lambda: _save(store, ctx),
            show=lambda _m: None,
            redactor=topo.redactor,
            lease=lease,
        )
        lease.start_heartbeat()
        try:
            result = await path.act(action, ctx, entry)
        except ActionRefused as exc:  # the executor's own gate, on the real resource
            entry.end(Outcome.REFUSED, f"refused - {exc.reason}", phase="refused")
            ctx.status, ctx.status_reason = "refused", f"{VIA}: gate '{exc.gate}': {exc.reason}"
            store.save(ctx)
            return ActionOutcome(
                decision="refuse",
                applied=False,
                gate=exc.gate,
                reason=topo.redactor.text(exc.reason),
                action=described,
                run_id=ctx.run_id,
            )
        except ApprovalRequired as exc:  # a gate at the landing wants a human first
            _record_pending(ctx, action, exc.gate, exc.reason)
            store.save(ctx)
            return ActionOutcome(
                decision="approval",
                applied=False,
                gate=exc.gate,
                reason=exc.reason,
                action=described,
                run_id=ctx.run_id,
            )
        except RootloopError as exc:  # the lease was lost before the side effect
            text = topo.redactor.text(str(exc))
            store.save(ctx)
            return ActionOutcome(
                decision="allow", applied=False, action=described, run_id=ctx.run_id, error=text
            )
    finally:
        lease.release()
    entry.changed, entry.undo, entry.commit = result.changed, result.undo, result.commit
    if not result.ok:
        text = topo.redactor.text(str(result.details.get("error") or result.changed))
        entry.end(Outcome.APPLY_FAILED, f"failed: {text}")
        store.save(ctx)
        return ActionOutcome(
            decision="allow", applied=False, action=described, run_id=ctx.run_id, error=text
        )
    if result.no_op:
        entry.end(Outcome.NO_OP, f"no-op: {result.changed}")
    else:  # not verified here: no outcome is claimed for it
        entry.phase, entry.result = "applied", "applied (not verified)"
        entry.finished_at = utcnow()
    store.save(ctx)
    return ActionOutcome(
        decision="allow",
        applied=result.ok,
        action=described,
        run_id=ctx.run_id,
        changed=topo.redactor.text(result.changed),
        undo=topo.redactor.text(result.undo),
    )


def _save(store: ContextStore, ctx: DebugContext) -> None:
    store.save(ctx)


def _entry_for(ctx: DebugContext, action: BaseAction) -> HistoryEntry:
    """The entry waiting for this action (after an approval), or a new one."""
    current = ctx.current
    if (
        current is not None
        and current.action_fingerprint == action.fingerprint()
        and current.phase in ("awaiting-approval", "diagnosed", "approved")
    ):
        return current
    ctx.iteration += 1
    entry = HistoryEntry(
        iteration=ctx.iteration,
        diagnosis=VIA,
        action=action.describe(),
        action_detail=action,  # type: ignore[arg-type]
        action_fingerprint=action.fingerprint(),
    )
    ctx.history.append(entry)
    return entry


def _record_pending(ctx: DebugContext, action: BaseAction, gate: str, reason: str) -> None:
    entry = _entry_for(ctx, action)
    entry.phase = "awaiting-approval"
    entry.result = f"waiting for approval at gate '{gate}'"
    ctx.pending_gate = PendingGate(gate=gate, reason=reason, iteration=entry.iteration)
    ctx.status, ctx.status_reason = "paused", f"{VIA}: awaiting approval ({gate})"


async def investigate(map_path: Path, state_root: Path, reasoner: str) -> InvestigationResult:
    """A whole investigation (the loop with its own gates), in the server's event loop."""
    from rootloop import runner

    session = runner.Session.open(map_path, state_root)
    chosen = session.reasoner(reasoner, map_path)  # type: ignore[arg-type]
    ctx = await runner.run(session, session.new_context(map_path), [], chosen)
    run_dir = session.store.run_dir(ctx.run_id)
    html = run_dir / "report.html"
    redactor = session.topology.redactor
    return InvestigationResult(
        run_id=ctx.run_id,
        status=ctx.status,
        status_reason=redactor.text(ctx.status_reason),
        iterations=ctx.iteration,
        pr=ctx.pr,
        report=str(html) if html.exists() else None,
        history=redactor.data(ctx.seed_view()["history"]),
    )
