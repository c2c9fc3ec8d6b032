"""Events the loop emits as it works.

One stream feeds the live terminal view, the JSON Lines transcript that memory
archives, and the MCP server. Sinks receive typed events; the loop never
prints.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from rootloop.models import utcnow

EventKind = Literal[
    "run-start",  # data: service, run_id, environment, topology_file, resumed
    "prior",  # data: PriorContext dump (memory loaded at start)
    "phase",  # data: phase (sweep|reason|gate|act|verify|test|pr), state (start|end)
    "finding",  # data: Finding dump
    "diagnosis",  # data: Diagnosis dump, proposal rationale
    "gate",  # data: gate, decision (allow|approval|refuse), reason
    "action",  # data: action dump, description, result (ActionResult dump) or error
    "progress",  # data: message (deploy waiter, CI watcher...)
    "verify",  # data: VerifyResult dump
    "test",  # data: load/ui test result dumps
    "pr",  # data: url/path, branch, created
    "escalate",  # data: reason
    "note",  # data: text
    "usage",  # data: model token/cost accounting
    "run-end",  # data: status, reason
]


class Event(BaseModel):
    kind: EventKind
    run_id: str
    iteration: int = 0
    at: datetime = Field(default_factory=utcnow)
    message: str = ""
    data: dict[str, Any] = {}


def redacted_event(event: Event) -> Event:
    """The event with every secret in its message and data masked."""
    from rootloop.redact import boundary

    red = boundary()
    return event.model_copy(
        update={"message": red.text(event.message), "data": red.data(event.data)}
    )


class EventSink(Protocol):
    def __call__(self, event: Event) -> None: ...


class Fanout:
    """Delivers each event to several sinks; a failing sink never stops the loop.

    The fan-out is where events leave the loop (terminal view, transcript, MCP, tests),
    so each event is redacted here, once, before any sink sees it.
    """

    def __init__(self, *sinks: EventSink | Callable[[Event], None]) -> None:
        self.sinks = list(sinks)
        self.errors: list[str] = []

    def add(self, sink: EventSink | Callable[[Event], None]) -> None:
        self.sinks.append(sink)

    def __call__(self, event: Event) -> None:
        event = redacted_event(event)
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as exc:  # a broken view must not break an investigation
                self.errors.append(f"{type(exc).__name__}: {exc}")
