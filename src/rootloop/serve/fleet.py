"""A fleet of workers on one PostgreSQL: heartbeats, and recovery of a dead worker's runs.

DBOS recovers a process's unfinished workflows when a process with the same
executor id starts again; without DBOS Conductor nothing notices a worker that
never comes back. Here every worker writes a heartbeat, and every worker looks
for executors whose heartbeat is older than ``dead_after_seconds``: the first
to delete the stale row (one ``DELETE … WHERE last_seen < cutoff``, so exactly
one claims it) asks DBOS to recover that executor's pending workflows, which
DBOS re-enqueues for whichever live worker dequeues them first.

The price of declaring a slow worker dead is a step running twice, so the
threshold is long by default (two minutes) and the heartbeat is written from
its own thread; the loop's idempotency keys and lease are the guard behind it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from rootloop.serve.store import Store, metadata

log = logging.getLogger("rootloop.serve.fleet")

executors = sa.Table(
    "rootloop_serve_executors",
    metadata,
    sa.Column("executor_id", sa.String(200), primary_key=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
)


class Heartbeat:
    def __init__(
        self,
        store: Store,
        executor_id: str,
        recover: Callable[[str], int],
        every_seconds: float,
        dead_after_seconds: float,
    ) -> None:
        self.store, self.executor_id, self.recover = store, executor_id, recover
        self.every, self.dead_after = every_seconds, dead_after_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        metadata.create_all(store.engine, tables=[executors])

    def beat(self) -> None:
        now = time.time()
        with self.store.engine.begin() as conn:
            updated = conn.execute(
                executors.update()
                .where(executors.c.executor_id == self.executor_id)
                .values(last_seen=now)
            ).rowcount
            if not updated:
                conn.execute(
                    executors.insert().values(
                        executor_id=self.executor_id, started_at=now, last_seen=now
                    )
                )

    def reap(self) -> list[str]:
        """Claim and recover every executor silent for longer than the threshold."""
        cutoff = time.time() - self.dead_after
        with self.store.engine.connect() as conn:
            stale = [
                r[0]
                for r in conn.execute(
                    sa.select(executors.c.executor_id).where(
                        executors.c.last_seen < cutoff,
                        executors.c.executor_id != self.executor_id,
                    )
                )
            ]
        claimed = []
        for dead in stale:
            with self.store.engine.begin() as conn:
                won = conn.execute(
                    executors.delete().where(
                        executors.c.executor_id == dead, executors.c.last_seen < cutoff
                    )
                ).rowcount
            if won:
                count = self.recover(dead)
                log.warning(
                    "recovered a dead worker's investigations",
                    extra={"dead_executor": dead, "workflows": count},
                )
                claimed.append(dead)
        return claimed

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._run, name="rootloop-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        # The row stays: if this worker left workflows pending, the fleet recovers them once
        # the row goes stale; if it left none, recovering it is a no-op.

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
                self.reap()
            except Exception:  # a missed beat is logged, never fatal to the worker
                log.exception("heartbeat failed")
