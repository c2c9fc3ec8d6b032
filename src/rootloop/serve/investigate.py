"""The one adapter between the service and the loop: ``investigate`` and ``approve``.

Everything serve knows about running an investigation is here, on the loop's
current entry points (``runner.Session`` and ``runner.run``), so the loop's
internals can change behind it. The durable workflow calls ``investigate``
inside a step; when a worker dies mid-step, DBOS runs the step again and this
function resumes the same run (its run id is the investigation id), and the
loop's own phase records keep an action from being applied twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path

from rootloop import runner
from rootloop.actions.gates import approval_key
from rootloop.context import DebugContext
from rootloop.errors import StateError
from rootloop.models import AlertContext
from rootloop.reasoning.base import Reasoner

#: statuses a run ends in; a run in one of them is not run again (unless its PR is pending)
TERMINAL = {"healthy", "recovered", "not-reproduced", "escalated", "refused", "failed", "paused"}


@dataclass(frozen=True)
class InvestigationRequest:
    investigation_id: str
    map_path: str
    state_dir: str
    reasoner: str = "auto"
    alert: str = ""  # the starting alert as rootloop.models.AlertContext JSON ("" if none)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class InvestigationOutcome:
    outcome: str  # the run's status: healthy | paused | escalated | refused | failed
    reason: str
    run_id: str | None = None
    pr: str | None = None
    gate: str | None = None  # when paused: the gate that waits for a human

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def investigate(request: InvestigationRequest) -> InvestigationOutcome:
    map_path = Path(request.map_path)
    session = runner.Session.open(map_path, Path(request.state_dir))
    run_id = request.investigation_id
    try:
        ctx = session.store.load(run_id)
    except StateError:
        ctx = session.new_context(map_path)
        ctx.run_id = run_id
        if request.alert:
            ctx.alert = AlertContext.model_validate_json(request.alert)
        session.store.save(ctx)
    if ctx.status in TERMINAL and not ctx.publish_pending:
        # Already ran to an end (the step was re-run after the process died between the
        # loop's end and the step's record): report it, do not run it again. A run killed
        # between its end and its pull request goes on: publishing is its last step.
        return _outcome(ctx)
    reasoner = session.reasoner(request.reasoner, map_path)  # type: ignore[arg-type]
    return _outcome(run_loop(session, ctx, reasoner))


def run_loop(session: runner.Session, ctx: DebugContext, reasoner: Reasoner) -> DebugContext:
    """The one call from the service into the loop (a new run, or a killed one resumed).

    Every investigation serve runs goes through here, so moving serve onto the loop's
    async public API is a change to this function alone. It runs in a DBOS step's
    thread, which has no event loop of its own: it starts one for the loop's coroutine."""
    return asyncio.run(runner.run(session, ctx, [], reasoner))


def _outcome(ctx: DebugContext) -> InvestigationOutcome:
    gate = ctx.pending_gate.gate if ctx.status == "paused" and ctx.pending_gate else None
    return InvestigationOutcome(ctx.status, ctx.status_reason, ctx.run_id, ctx.pr, gate)


def approve(request: InvestigationRequest, gate: str, approver: str, action: str) -> bool:
    """Record a human's approval of the action the run waits on, as ``rootloop approve`` does.

    ``action`` is the fingerprint of the action the approver was shown. False (and
    nothing recorded) unless the run waits at exactly this gate on exactly that action:
    an approval never carries over to another action at the same gate. Production
    is never approvable here: rootloop does not act there, whoever asks.
    """
    if gate == "production":
        return False
    session = runner.Session.open(
        Path(request.map_path), Path(request.state_dir), with_memory=False
    )
    store = session.store
    try:
        ctx = store.load(request.investigation_id)
    except StateError:
        return False
    entry = ctx.current
    if (
        ctx.status != "paused"
        or ctx.pending_gate is None
        or ctx.pending_gate.gate != gate
        or entry is None
        or entry.action_detail is None
        or entry.action_detail.fingerprint() != action
    ):
        return False
    ctx.approvals.append(approval_key(gate, entry.action_detail))
    ctx.notes.append(f"approved gate '{gate}' by {approver} for: {entry.action}")
    ctx.status = "running"
    store.save(ctx)
    return True
