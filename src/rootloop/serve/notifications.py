"""The watcher: turns what the durable records say into notification events, once each.

It reads the same records as the dashboard (the service's store and the runs'
debug contexts) every ``poll_seconds``, and compares each run with what was last
announced (kept in SQL by ``rootloop.notify.state``): a new run is *started*, a
new gate is *paused*, a gate no longer waited at is *gate-resolved* (by a
person — the decision is in the context — or by a timeout or a kill), then
*escalated* or *ended*. Runs that had already ended before the watcher first saw
them are recorded silently: a restart never floods a channel.

A decision taken in this process pokes the watcher, so the Slack message loses
its buttons at once rather than at the next poll.
"""

from __future__ import annotations

import logging
import threading
import time

from rootloop.approvals import approved_and_waiting
from rootloop.notify.events import Event
from rootloop.notify.hub import Hub
from rootloop.redact import Redactor
from rootloop.serve.dashboard.board import Board, Item, plan_of

log = logging.getLogger("rootloop.serve.notifications")
#: every way a run ends but escalation (its own event): context.RunStatus
ENDED = {"healthy", "recovered", "not-reproduced", "refused", "failed"}


def plan_text(board: Board, run_id: str) -> tuple[str, str, str]:
    """(plan, gate reason, action fingerprint) of the action the run waits on."""
    ctx = board.context(run_id)
    entry = ctx.current if ctx else None
    if ctx is None or entry is None or entry.action_detail is None or ctx.pending_gate is None:
        return "", "", ""
    redact = Redactor()
    plan = plan_of(entry.action_detail, redact)
    lines = [f"{plan.kind} on {plan.target}"] + [f"{k}: {v}" for k, v in plan.fields]
    text = "\n".join(lines) + (f"\n\n{plan.code}" if plan.code else "")
    return text, redact(ctx.pending_gate.reason), entry.action_detail.fingerprint()


class Watcher:
    def __init__(self, board: Board, hub: Hub, poll_seconds: float, public_url: str | None) -> None:
        self.board = board
        self.hub = hub
        self.poll_seconds = poll_seconds
        self.public_url = (public_url or "").rstrip("/")
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()

    def url(self, run_id: str) -> str | None:
        return f"{self.public_url}/ui/investigations/{run_id}" if self.public_url else None

    def start(self) -> None:
        threading.Thread(target=self._forever, name="rootloop-notify", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    def _forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("notification watcher tick failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def tick(self) -> int:
        """One pass over the runs; returns the number of events sent."""
        sent = 0
        with self._lock:
            known = self.hub.state.all()
            for item in self.board.items(limit=500):
                sent += self._run(item, known.get(item.id))
        return sent

    def _event(self, kind: str, item: Item, reason: str = "", **kw: object) -> Event:
        return Event(
            kind,  # type: ignore[arg-type]
            item.id,
            item.service,
            item.environment,
            item.status,
            reason=reason or item.reason,
            pr=item.pr,
            url=self.url(item.id),
            **kw,  # type: ignore[arg-type]
        )

    def _run(self, item: Item, prev: dict[str, object] | None) -> int:
        ctx = self.board.context(item.id)
        gate_key = None  # approved but not yet resumed: no longer waiting for anyone
        if item.gate and ctx is not None and ctx.current and not approved_and_waiting(ctx):
            gate_key = f"{item.gate}:{ctx.current.iteration}"
        events: list[Event] = []
        if prev is None:
            if item.status in ENDED | {"escalated"} and item.created_at < self.started_at:
                self.hub.state.put(item.id, status=item.status, gate_key=gate_key)
                return 0
            events.append(self._event("started", item))
            prev = {"status": "", "gate_key": None}
        old_gate = prev.get("gate_key")
        if old_gate and old_gate != gate_key:
            gate, _, iteration = str(old_gate).partition(":")
            decision = None
            if ctx is not None:
                match = [
                    d for d in ctx.decisions if d.gate == gate and str(d.iteration) == iteration
                ]
                if match:
                    decision = match[-1].model_dump(mode="json")
            events.append(self._event("gate-resolved", item, gate=gate, decision=decision))
        if gate_key and gate_key != old_gate:
            plan, reason, fingerprint = plan_text(self.board, item.id)
            events.append(
                self._event(
                    "paused", item, reason, gate=item.gate, plan=plan, fingerprint=fingerprint
                )
            )
        if item.status != prev.get("status"):
            if item.status == "escalated":
                events.append(self._event("escalated", item))
            elif item.status in ENDED:
                events.append(self._event("ended", item))
        # recorded before sending: a crash mid-send loses a message, never repeats a button
        self.hub.state.put(item.id, status=item.status, gate_key=gate_key)
        for event in events:
            self.hub.send(event)
        return len(events)
