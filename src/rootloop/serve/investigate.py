"""The one adapter between the service and the loop.

Everything serve knows about running an investigation is here, on the loop's
current entry points (``runner.Session`` and ``runner.run``), so the loop's
internals can change behind it. The durable workflow calls ``investigate``
inside a step; when a worker dies mid-step, DBOS runs the step again and this
function resumes the same run (its run id is the investigation id), and the
loop's own phase records keep an action from being applied twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from rootloop import runner
from rootloop.errors import StateError

TERMINAL = {"healthy", "escalated", "refused", "failed", "paused"}


@dataclass(frozen=True)
class InvestigationRequest:
    investigation_id: str
    map_path: str
    state_dir: str
    reasoner: str = "auto"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class InvestigationOutcome:
    outcome: str  # the run's status: healthy | paused | escalated | refused | failed
    reason: str
    run_id: str | None = None
    pr: str | None = None

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
        session.store.save(ctx)
    if ctx.status in TERMINAL:
        # Already ran to an end (the step was re-run after the process died between the
        # loop's end and the step's record): report it, do not run it again.
        return InvestigationOutcome(ctx.status, ctx.status_reason, ctx.run_id, ctx.pr)
    reasoner = session.reasoner(request.reasoner, map_path)  # type: ignore[arg-type]
    ctx = runner.run(session, ctx, [], reasoner)
    return InvestigationOutcome(ctx.status, ctx.status_reason, ctx.run_id, ctx.pr)
