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
            runner.run(session, ctx, [], reasoner)
        except Exception:
            log.exception("resuming %s failed", run_id)
        finally:
            with self._lock:
                self._running.discard(run_id)
            self.on_end(run_id)
