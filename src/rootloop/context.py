"""The shared debug context: the seed's object, persisted after every change.

The seed's shape (``service``, ``iteration``, ``history[{iteration, diagnosis,
action, commit, gha, result}]``) is kept field for field; rootloop adds the
typed diagnosis and action behind each line, the phase an iteration reached
(so a killed run resumes without repeating an action) and the run's status.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from rootloop.errors import StateError
from rootloop.models import AlertContext, Candidate, Diagnosis, Outcome, Symptom, utcnow
from rootloop.models.actions import Action, BaseAction
from rootloop.redact import write_json

Phase = Literal[
    "diagnosed",
    "approved",
    "applying",
    "applied",
    "verified",
    "done",
    "failed",
    "refused",
    "awaiting-approval",
]
#: how a run ended. "healthy" only when the last iteration's outcome is ``fixed``;
#: "recovered": the symptoms cleared but no action is credited; "not-reproduced": the
#: sweep and the map's reproductions found nothing wrong.
RunStatus = Literal[
    "running",
    "healthy",
    "recovered",
    "not-reproduced",
    "paused",
    "escalated",
    "refused",
    "failed",
]


class HistoryEntry(BaseModel):
    # the seed's fields
    iteration: int
    diagnosis: str
    action: str = ""
    commit: str | None = None
    gha: str | None = None
    result: str = "pending"  # for people: every decision reads ``outcome``
    # rootloop's
    outcome: Outcome | None = None  # None while the iteration is still going
    phase: Phase = "diagnosed"
    diagnosis_detail: Diagnosis | None = None
    action_detail: Action | None = None
    action_fingerprint: str | None = None
    rung: str | None = None
    changed: str | None = None
    undo: str | None = None
    verification: dict[str, Any] | None = None
    tests: dict[str, Any] | None = None
    #: what an executor wrote down BEFORE a side effect (the previous state, an explicit
    #: target, the sessions to end): a resumed action finishes the same change and reports
    #: what it really changed, never "nothing changed" because it ran before the kill
    journal: dict[str, Any] = {}
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None

    @property
    def failed(self) -> bool:
        """The iteration ended without fixing its fault (still going: not failed yet)."""
        return self.outcome is not None and self.outcome.failed

    @property
    def did_not_help(self) -> bool:
        """The action did not fix its diagnosis: never propose it again for that diagnosis.

        An action whose outcome is a *new* fault did help — it moved the investigation on
        (the seed's batch-size fix that exposed pool exhaustion) — so it is not one.
        """
        return self.outcome is not None and self.outcome.did_not_help

    def end(self, outcome: Outcome, result: str, phase: Phase = "failed") -> None:
        """Close the iteration: the outcome decides, the text explains."""
        self.outcome = outcome
        self.result = result[:300]
        self.phase = phase
        self.finished_at = utcnow()


class PendingGate(BaseModel):
    gate: str
    reason: str
    iteration: int


class HumanDecision(BaseModel):
    """A person's answer at a gate: who, when, why, from where, and through what."""

    gate: str
    decision: Literal["approved", "denied"]
    action: str
    iteration: int
    who: str
    via: str  # cli | dashboard | api | slack
    origin: str = ""  # where from: a host, an address, a Slack team
    reason: str = ""
    at: datetime = Field(default_factory=utcnow)


class DebugContext(BaseModel):
    service: str
    iteration: int = 0
    history: list[HistoryEntry] = []
    run_id: str = Field(default_factory=lambda: new_run_id())
    environment: str = "lower"
    topology_file: str | None = None
    status: RunStatus = "running"
    status_reason: str = ""
    pending_gate: PendingGate | None = None
    approvals: list[str] = []
    decisions: list[HumanDecision] = []
    branch: str | None = None
    pr: str | None = None
    #: the last ending whose PR and report were published (see ``ending``)
    published: str | None = None
    notes: list[str] = []
    usage: dict[str, Any] = {}
    #: every bad signal of the run's first sweep: "fixed" means each is good again
    entry_symptoms: list[Symptom] = []
    #: the alert that started the run, when one did (its query is part of reproduction)
    alert: AlertContext | None = None
    #: what the run checked to reproduce a complaint its sweep did not show
    reproduction: list[str] = []
    #: where a human starts when rootloop escalates: the top suspects, with evidence
    suspects: list[Candidate] = []
    started_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    # -- questions the loop asks -----------------------------------------
    def attempt_of(self, action: BaseAction) -> HistoryEntry | None:
        """The latest finished iteration that tried exactly this action, if any (the one
        being gated is in the history already, and has no outcome yet)."""
        fp = action.fingerprint()
        return next(
            (
                h
                for h in reversed(self.history)
                if h.action_fingerprint == fp and h.outcome is not None
            ),
            None,
        )

    def failed_before(self, action: BaseAction) -> HistoryEntry | None:
        entry = self.attempt_of(action)
        return entry if entry is not None and entry.did_not_help else None

    def failed_fingerprints(self, diagnosis_key: str | None = None) -> set[str]:
        return {
            h.action_fingerprint
            for h in self.history
            if h.did_not_help
            and h.action_fingerprint
            and (
                diagnosis_key is None
                or (h.diagnosis_detail and h.diagnosis_detail.key == diagnosis_key)
            )
        }

    def failed_rungs(self, diagnosis_key: str) -> set[str]:
        """Runbook rungs already climbed in vain for this diagnosis (``memory x2`` is one
        rung whatever the memory it computes to)."""
        return {
            h.rung
            for h in self.history
            if h.did_not_help
            and h.rung
            and h.diagnosis_detail is not None
            and h.diagnosis_detail.key == diagnosis_key
        }

    def broken_fingerprints(self) -> set[str]:
        """Actions whose execution itself failed (tests red, CI red): never again, whatever
        the diagnosis."""
        return {
            h.action_fingerprint
            for h in self.history
            if h.outcome is Outcome.APPLY_FAILED and h.action_fingerprint
        }

    def ending(self) -> str:
        """This ending of the run, as publishing keys it: ``<status>@<iterations>``."""
        return f"{self.status}@{len(self.history)}"

    @property
    def publish_pending(self) -> bool:
        """The run reached an ending that is not published yet (killed between the two):
        derived, not a flag, so no crash can fall between the status and the flag."""
        return self.status != "running" and self.published != self.ending()

    def action_key(self, entry: HistoryEntry) -> str:
        """The idempotency key of an iteration's action: ``<run>/<iteration>``. It tags
        the task-definition revision, the commit's trailer and the migration ledger row,
        so a resumed run finds its own side effect in the real world."""
        return f"{self.run_id}/{entry.iteration}"

    @property
    def current(self) -> HistoryEntry | None:
        return self.history[-1] if self.history else None

    def seed_view(self) -> dict[str, Any]:
        """Exactly the seed's object, for PR bodies and humans."""
        rows = []
        for h in self.history:
            row: dict[str, Any] = {
                "iteration": h.iteration,
                "diagnosis": h.diagnosis,
                "action": h.action,
            }
            if h.commit:
                row["commit"] = h.commit
            if h.gha:
                row["gha"] = h.gha
            row["result"] = h.result
            rows.append(row)
        return {"service": self.service, "iteration": self.iteration, "history": rows}


def new_run_id() -> str:
    return utcnow().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


_RUN_ID = re.compile(r"^[A-Za-z0-9._-]+$")


class ContextStore:
    """Debug contexts on disk: ``<state>/runs/<run_id>/context.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs = root / "runs"

    def run_dir(self, run_id: str) -> Path:
        if not _RUN_ID.match(run_id):
            raise StateError(f"'{run_id}' is not a run id (see 'rootloop history').")
        return self.runs / run_id

    def save(self, ctx: DebugContext) -> Path:
        """Persist the context, redacted: the file is an artefact like any other. An action
        whose value was a secret reads back masked, and is then never applied (see
        ``rootloop.redact.carries_mask``)."""
        ctx.updated_at = utcnow()
        path = self.run_dir(ctx.run_id) / "context.json"
        write_json(path, ctx.model_dump(mode="json"))
        return path

    def load(self, run_id: str) -> DebugContext:
        path = self.run_dir(run_id) / "context.json"
        if not path.exists():
            known = ", ".join(r.run_id for r in self.list()[:5]) or "none yet"
            raise StateError(f"no run '{run_id}' in {self.runs} (recent runs: {known}).")
        return DebugContext.model_validate_json(path.read_text(encoding="utf-8"))

    def list(self, service: str | None = None) -> list[DebugContext]:
        out = []
        for path in self.runs.glob("*/context.json"):
            try:
                ctx = DebugContext.model_validate_json(path.read_text(encoding="utf-8"))
            except ValueError:
                continue
            if service is None or ctx.service == service:
                out.append(ctx)
        return sorted(out, key=lambda c: c.started_at, reverse=True)

    def latest(self, service: str | None = None) -> DebugContext | None:
        runs = self.list(service)
        return runs[0] if runs else None
