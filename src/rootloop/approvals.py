"""A human's answer at a gate, one way for every surface (CLI, dashboard, API, Slack).

``rootloop approve``, the dashboard's Approve/Deny buttons and Slack's buttons all
end here, so an approval means the same thing wherever it was given: the gate's
approval key goes into the debug context (the key the gatekeeper checks, tied to
the exact action's fingerprint) and a ``HumanDecision`` records who, when, why
and from where — the report and the PR read it from the context.

A decision is taken under a lock on the run's directory and only while the run
still waits at that gate for that action, so two people answering at once, or
an answer racing a timeout, record one decision and the other gets a clear
"already decided".
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from rootloop.actions.gates import approval_key
from rootloop.context import ContextStore, DebugContext, HumanDecision
from rootloop.errors import UserError

Verdict = Literal["approved", "denied"]

#: rootloop never acts in production, whoever asks
NEVER = {"production"}


class NotWaiting(UserError):
    """The run does not (or no longer) wait at that gate: someone else answered first."""


@contextmanager
def run_lock(store: ContextStore, run_id: str) -> Iterator[None]:
    run_dir = store.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / ".decision.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def waiting_action(ctx: DebugContext, gate: str) -> str:
    """The action the run waits on at ``gate``; ``NotWaiting`` when it waits for nothing."""
    if ctx.status != "paused" or ctx.pending_gate is None or ctx.pending_gate.gate != gate:
        waiting = ctx.pending_gate.gate if ctx.pending_gate else "nothing"
        raise NotWaiting(
            f"run {ctx.run_id} is not waiting at gate '{gate}' (it waits for {waiting})."
        )
    entry = ctx.current
    if entry is None or entry.action_detail is None:
        raise NotWaiting(f"run {ctx.run_id} records no action at gate '{gate}'.")
    return entry.action


def decide(
    store: ContextStore,
    run_id: str,
    gate: str,
    verdict: Verdict,
    *,
    who: str,
    via: str,
    origin: str = "",
    reason: str = "",
    fingerprint: str | None = None,
) -> DebugContext:
    """Record ``verdict`` for the action ``run_id`` waits on at ``gate``; return the context.

    Approving adds the gate's approval key (resuming is the caller's next step);
    denying ends the run as *refused* with the reason, and the action never runs.
    ``fingerprint``, when given, is the action the person was shown: if the run now
    waits on another action, nothing is recorded.
    """
    if gate in NEVER:
        raise UserError("production changes are made by humans; rootloop never acts there")
    reason = " ".join(reason.split())[:2000]
    if verdict == "denied" and not reason:
        raise UserError("a denial needs a reason")
    if not who.strip():
        raise UserError("a decision needs the name of the person who made it")
    with run_lock(store, run_id):
        ctx = store.load(run_id)
        action = waiting_action(ctx, gate)
        entry = ctx.current
        assert entry is not None and entry.action_detail is not None
        if fingerprint is not None and fingerprint != entry.action_detail.fingerprint():
            raise NotWaiting(f"run {run_id} now waits on another action; reload and look again.")
        if approval_key(gate, entry.action_detail) in ctx.approvals:
            raise NotWaiting(f"run {run_id}'s action at gate '{gate}' is already approved.")
        ctx.decisions.append(
            HumanDecision(
                gate=gate,
                decision=verdict,
                action=action,
                iteration=entry.iteration,
                who=who.strip(),
                via=via,
                origin=origin,
                reason=reason,
            )
        )
        if verdict == "approved":
            ctx.approvals.append(approval_key(gate, entry.action_detail))
            ctx.notes.append(f"approved gate '{gate}' for: {action} (by {who} via {via})")
        else:
            entry.phase = "refused"
            entry.result = "refused - denied by a human"
            ctx.pending_gate = None
            ctx.status = "refused"
            ctx.status_reason = f"denied at gate '{gate}' by {who}: {reason}"
            ctx.notes.append(f"denied gate '{gate}' for: {action} (by {who} via {via}): {reason}")
        store.save(ctx)
        return ctx


def approved_and_waiting(ctx: DebugContext) -> bool:
    """The run waits at a gate whose action a human has approved: it may resume."""
    entry = ctx.current
    return (
        ctx.status == "paused"
        and ctx.pending_gate is not None
        and entry is not None
        and entry.action_detail is not None
        and approval_key(ctx.pending_gate.gate, entry.action_detail) in ctx.approvals
    )
