"""What happened to an investigation, in one shape every channel renders."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["started", "paused", "gate-resolved", "escalated", "ended"]


@dataclass(frozen=True)
class Event:
    kind: Kind
    run_id: str
    service: str
    environment: str
    status: str
    reason: str = ""
    gate: str | None = None
    plan: str = ""  # exactly what the gated action will do (SQL, a task-definition change)
    fingerprint: str = ""
    pr: str | None = None
    url: str | None = None  # the investigation's dashboard page
    decision: dict[str, Any] | None = None  # who/when/why/via, when a gate was resolved
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "", {})}

    @property
    def headline(self) -> str:
        svc = f"{self.service} ({self.environment})"
        if self.kind == "started":
            return f"Investigating {svc}"
        if self.kind == "paused":
            return f"{svc} waits for approval at the {self.gate} gate"
        if self.kind == "gate-resolved":
            d = self.decision or {}
            if d:
                verdict, who, via = d.get("decision", "resolved"), d.get("who", "?"), d.get("via")
                return f"{verdict} by {who} via {via or '?'}"
            return f"the {self.gate} gate was resolved ({self.status})"
        if self.kind == "escalated":
            return f"{svc} escalated to a human"
        return f"{svc} ended {self.status}"
