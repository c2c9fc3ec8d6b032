"""After an approval, the run goes on: the loop resumes the paused run where it stopped.

The same steps as ``rootloop approve`` (then ``resume``): the gate's approval key
is in the context, the run's status goes back to running, and ``runner.run``
continues it — the gatekeeper now lets that exact action through, and the
loop's phase records keep anything already done from being done again.

It runs in a background thread of the serving process, one at a time per run.
A process that dies mid-resume leaves the run marked running with its approval
recorded; ``rootloop resume RUN`` continues it (the durable queue does not yet
carry resumes: see docs/dashboard.md).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from rootloop.approvals import approved_and_waiting, run_lock
from rootloop.context import ContextStore

log = logging.getLogger("rootloop.serve.dashboard.resume")


class ThreadResumer:
    def __init__(
        self,
        contexts: ContextStore,
        reasoner: str = "auto",
        on_end: Callable[[str], None] = lambda _run: None,
    ) -> None:
        self.contexts = contexts
        self.reasoner = reasoner
        self.on_end = on_end
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, run_id: str) -> None:
        with self._lock:
            if run_id in self._running:
                return
            self._running.add(run_id)
        threading.Thread(
            target=self._run, args=(run_id,), name=f"resume-{run_id}", daemon=True
        ).start()

    def _run(self, run_id: str) -> None:
        try:
            from rootloop import runner

            with run_lock(self.contexts, run_id):
                ctx = self.contexts.load(run_id)
                if not approved_and_waiting(ctx) or not ctx.topology_file:
                    return
                ctx.status = "running"
                self.contexts.save(ctx)
            map_path = Path(ctx.topology_file)
            session = runner.Session.open(map_path, self.contexts.root)
            reasoner = session.reasoner(self.reasoner, map_path)  # type: ignore[arg-type]
            asyncio.run(runner.run(session, ctx, [], reasoner))  # this thread's own loop
        except Exception:
            log.exception("resuming %s failed", run_id)
        finally:
            with self._lock:
                self._running.discard(run_id)
            self.on_end(run_id)


class DurableResumer:
    """Where DBOS workers run the investigations, an approval wakes the workflow itself.

    The workflow waits durably (``DBOS.recv``) for an approval of the gate it paused at
    and holds the service's lease meanwhile, so resuming the run in a thread beside it
    would only queue behind that lease. The decision is already recorded in the debug
    context (who, when, why, from where); this hands the wait its answer, and the
    workflow resumes the run on the queue, surviving restarts like any other step.
    """

    def __init__(
        self, contexts: ContextStore, send_approval: Callable[[str, str, str, str], None]
    ) -> None:
        self.contexts = contexts
        self.send_approval = send_approval

    def __call__(self, run_id: str) -> None:
        try:
            ctx = self.contexts.load(run_id)
        except Exception:
            log.exception("resuming %s: its context could not be read", run_id)
            return
        if not approved_and_waiting(ctx) or ctx.pending_gate is None:
            return
        who = ctx.decisions[-1].who if ctx.decisions else "dashboard"
        entry = ctx.current
        if entry is None or entry.action_detail is None:
            return
        try:
            self.send_approval(
                run_id, ctx.pending_gate.gate, who, entry.action_detail.fingerprint()
            )
        except Exception:
            # The decision is recorded either way; a failed hand-over must not turn the
            # person's approval into an error page that tempts a second click.
            log.exception("handing %s's approval to its workflow failed", run_id)
