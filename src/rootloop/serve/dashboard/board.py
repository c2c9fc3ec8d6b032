"""What the dashboard shows, read from the two durable records it sits on.

The service's store says which alert started an investigation and when; the
debug context (``<state>/runs/<id>/context.json``, the loop's own record) says
where the run is: its status, iteration, history, the gate it waits at. The
context is the authority on a run's status — a run paused at a gate and then
approved goes on running after its workflow recorded ``paused``.

Everything leaving here for a page passes the redactor (the map's, when the run's
map loads, else the pattern-only one): a secret in an action or a finding is
masked before any template sees it.
"""

from __future__ import annotations

import difflib
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootloop.context import ContextStore, DebugContext
from rootloop.errors import RootloopError
from rootloop.models.actions import ApplyPatch, RunMigration, SetEnvVar, SetFunctionEnv
from rootloop.redact import SENSITIVE_NAME, Redactor
from rootloop.serve.store import InvestigationRow, Store

#: the HTML report's colours, one per run status (rootloop.report.html.STATUS)
STATUS_CLASS = {
    "healthy": "healthy",
    "escalated": "bad",
    "refused": "bad",
    "failed": "bad",
    "paused": "paused",
    "running": "running",
    "queued": "queued",
}


@dataclass
class Item:
    id: str
    service: str
    environment: str
    status: str
    outcome: str
    iteration: int
    created_at: float
    alert: str
    reason: str = ""
    gate: str | None = None
    pr: str | None = None

    @property
    def age(self) -> str:
        return age(self.created_at)

    @property
    def css(self) -> str:
        return STATUS_CLASS.get(self.status, "queued")


def age(then: float, now: float | None = None) -> str:
    seconds = max(0, int((now or time.time()) - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass
class Plan:
    """Exactly what an action will do, in the words of the thing it changes."""

    kind: str
    target: str
    summary: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    code: str = ""  # SQL, a diff
    code_lang: str = ""


def plan_of(action: Any, redact: Redactor) -> Plan:
    data = action.model_dump(mode="json")
    skip = {"kind", "target", "reason", "sql", "edits"}
    fields = [(k, redact(str(v))) for k, v in data.items() if k not in skip and v not in (None, "")]
    plan = Plan(action.kind, action.target, redact(action.reason or ""), fields)
    if isinstance(action, RunMigration):
        plan.code, plan.code_lang = redact(action.sql), "sql"
    elif isinstance(action, ApplyPatch):
        plan.code, plan.code_lang = redact(patch_diff(action)), "diff"
    elif isinstance(action, SetEnvVar | SetFunctionEnv):
        plan.code = redact(f"{action.name}={action.value if action.value is not None else ''}")
        if _sensitive(action.name):
            plan.code = f"{action.name}=***"
        plan.fields = [(k, v) for k, v in plan.fields if k != "value"]
    return plan


def _sensitive(name: str) -> bool:
    return bool(SENSITIVE_NAME.search(name))


def patch_diff(action: ApplyPatch) -> str:
    out: list[str] = []
    for edit in action.edits:
        out += difflib.unified_diff(
            edit.search.splitlines(keepends=True),
            edit.replace.splitlines(keepends=True),
            fromfile=f"a/{edit.path}",
            tofile=f"b/{edit.path}",
        )
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


class Board:
    def __init__(self, store: Store | None, contexts: ContextStore) -> None:
        self.store = store
        self.contexts = contexts

    # -- reads ------------------------------------------------------------------
    def context(self, run_id: str) -> DebugContext | None:
        try:
            return self.contexts.load(run_id)
        except RootloopError:
            return None

    def row(self, inv_id: str) -> InvestigationRow | None:
        return self.store.investigation(inv_id) if self.store is not None else None

    def items(
        self, status: str | None = None, service: str | None = None, limit: int = 200
    ) -> list[Item]:
        items: dict[str, Item] = {}
        rows = self.store.investigations(limit) if self.store is not None else []
        for row in rows:
            ctx = self.context(row.run_id or row.id)
            items[row.id] = self._item(row, ctx)
        for ctx in self.contexts.list()[:limit]:
            if ctx.run_id not in items:  # a run started from the command line
                items[ctx.run_id] = self._item(None, ctx)
        out = sorted(items.values(), key=lambda i: i.created_at, reverse=True)
        if status:
            out = [i for i in out if i.status == status]
        if service:
            out = [i for i in out if i.service == service]
        return out[:limit]

    def item(self, inv_id: str) -> Item | None:
        row = self.row(inv_id)
        ctx = self.context(row.run_id or row.id if row else inv_id)
        if row is None and ctx is None:
            return None
        return self._item(row, ctx)

    @staticmethod
    def _item(row: InvestigationRow | None, ctx: DebugContext | None) -> Item:
        status: str
        if ctx is not None:
            status = ctx.status
        else:
            assert row is not None
            status = row.status if row.status != "ended" else (row.outcome or "ended")
        redact = Redactor()
        return Item(
            id=row.id if row else ctx.run_id,  # type: ignore[union-attr]
            service=row.service if row else ctx.service,  # type: ignore[union-attr]
            environment=row.environment if row else ctx.environment,  # type: ignore[union-attr]
            status=status,
            outcome=(row.outcome if row and row.outcome else (status if ctx else "")) or "",
            iteration=ctx.iteration if ctx else 0,
            created_at=row.created_at if row else ctx.started_at.timestamp(),  # type: ignore[union-attr]
            alert=redact(row.title if row else "started from the command line"),
            reason=redact((ctx.status_reason if ctx else row.reason or "") or ""),  # type: ignore[union-attr]
            gate=ctx.pending_gate.gate if ctx and ctx.pending_gate and status == "paused" else None,
            pr=ctx.pr if ctx else None,
        )

    def services(self) -> list[str]:
        return sorted({i.service for i in self.items()})

    def pending(self) -> list[Item]:
        return [i for i in self.items(status="paused") if i.gate]

    def version(self) -> str:
        """Changes whenever anything the list shows changes: the live updates' trigger."""
        parts = []
        for path in sorted(self.contexts.runs.glob("*/context.json")):
            try:
                parts.append(f"{path.parent.name}:{path.stat().st_mtime_ns}")
            except OSError:
                continue
        if self.store is not None:
            for row in self.store.investigations(200):
                parts.append(f"{row.id}:{row.status}:{row.outcome}:{row.alert_count}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def run_dir(self, run_id: str) -> Path:
        return self.contexts.run_dir(run_id)
