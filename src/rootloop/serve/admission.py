"""Storms: what intake does with an alert before any investigation work starts.

The rules, in order, each leaving a recorded verdict:

- not routable → ``unrouted``; not an actionable state → ``ignored``;
- resolved → ``resolved``, written on the investigation the alert belonged to;
- an investigation is active for the alert's service and environment →
  ``attached`` (resends, repeats and sibling alerts all join the one run);
- the alert's last investigation ended less than the flap window ago → ``flapping``;
- the service started its share of investigations this period → ``rate-limited``;
- else a new investigation → ``started``, and the caller enqueues it.

Admission is serialised per process and guarded across processes by the
database's unique index on active investigations: the loser of a race sees an
``IntegrityError``, retries, and attaches.

Group commit: one writer thread per process takes every request waiting when it
finishes a transaction and writes them all in the next one. Under a storm that is
one transaction (one fsync) for everything that arrived meanwhile, so the cost per
alert falls as the load rises. The request handler hands its alerts over and
awaits a future: it holds no thread while it waits (a thread per waiting request
would cap the batch at the size of the thread pool, 40, and cost a thread switch
each).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rootloop.serve.alerts import Alert, Verdict
from rootloop.serve.config import Storms
from rootloop.serve.routing import Router, Target
from rootloop.serve.store import InvestigationRow, Store, investigations, new_investigation_id


@dataclass(frozen=True)
class Ticket:
    """What the durable queue needs to run one investigation."""

    investigation_id: str
    lease_key: str
    fingerprint: str


@dataclass(frozen=True)
class Decision:
    fingerprint: str
    verdict: Verdict
    investigation_id: str | None = None


@dataclass
class _Job:
    items: list[tuple[Alert, Target | None]]
    decisions: list[Decision] = field(default_factory=list)
    error: Exception | None = None
    future: Future[list[Decision]] = field(default_factory=Future)


class Admission:
    def __init__(
        self,
        store: Store,
        router: Router,
        storms: Storms,
        enqueue: Callable[[Ticket], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.router, self.storms = store, router, storms
        self.enqueue = enqueue
        self.clock = clock
        self._wake = threading.Condition()
        self._pending: list[_Job] = []
        self._writer: threading.Thread | None = None

    def submit(self, alerts: list[Alert]) -> Future[list[Decision]]:
        """Hand the alerts to the writer; the future holds their decisions once recorded
        (and the investigations they start enqueued), or the error that stopped that."""
        job = _Job([(a, self.router.route(a)) for a in alerts])
        with self._wake:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_forever, name="rootloop-admission", daemon=True
                )
                self._writer.start()
            self._pending.append(job)
            self._wake.notify()
        return job.future

    def admit(self, alerts: list[Alert]) -> list[Decision]:
        """Decide and record every alert; enqueue the investigations that start."""
        return self.submit(alerts).result()

    def _write_forever(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                batch, self._pending = self._pending, []
            try:
                self._write(batch)
            except BaseException as exc:  # never leave a caller waiting on a dead writer
                for job in batch:
                    job.error = job.error or RuntimeError(f"admission failed: {exc!r}")
            for job in batch:
                if job.error is not None:
                    job.future.set_exception(job.error)
                else:
                    job.future.set_result(job.decisions)

    def _write(self, batch: list[_Job]) -> None:
        try:
            with self.store.engine.begin() as conn:
                tx = _Tx(self.store, conn)
                results = [[self._decide(tx, a, t) for a, t in job.items] for job in batch]
                tx.flush()
        except IntegrityError:
            # Another process started a service's investigation between our read and our
            # insert: decide each alert again on its own, and this time attach to it.
            results = []
            for job in batch:
                try:
                    results.append([self._decide_alone(a, t) for a, t in job.items])
                except Exception as exc:
                    job.error = exc
                    results.append([])
        except Exception as exc:
            for job in batch:
                job.error = exc
            return
        for job, decided in zip(batch, results, strict=True):
            try:
                for _decision, ticket in decided:
                    if ticket is not None:
                        self.enqueue(ticket)
            except Exception as exc:  # recorded, not queued: the reconciler queues it later
                job.error = exc
            job.decisions = [d for d, _ in decided]

    def _decide_alone(self, alert: Alert, target: Target | None) -> tuple[Decision, Ticket | None]:
        for attempt in range(3):
            try:
                with self.store.engine.begin() as conn:
                    tx = _Tx(self.store, conn)
                    decided = self._decide(tx, alert, target)
                    tx.flush()
                    return decided
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _decide(
        self, tx: _Tx, alert: Alert, target: Target | None
    ) -> tuple[Decision, Ticket | None]:
        fp, conn = alert.fingerprint, tx.conn
        if alert.status == "ignored":
            return tx.record(alert, Verdict.IGNORED, target), None
        if target is None:
            return tx.record(alert, Verdict.UNROUTED, None), None
        if alert.status == "resolved":
            owner = tx.latest_for_fingerprint(fp)
            if owner is not None:
                conn.execute(
                    investigations.update()
                    .where(investigations.c.id == owner.id)
                    .values(resolved_at=self.clock())
                )
            return tx.record(alert, Verdict.RESOLVED, target, owner.id if owner else None), None
        active = tx.active_for(target.lease_key)
        if active is not None:
            tx.counts[active] += 1
            return tx.record(alert, Verdict.ATTACHED, target, active), None
        now = self.clock()
        last = tx.latest_for_fingerprint(fp)
        window = self.storms.flap_window_seconds
        if last is not None and last.ended_at is not None and now - last.ended_at < window:
            return tx.record(alert, Verdict.FLAPPING, target, last.id), None
        limit = self.storms.rate_limit
        if self.store.started_since(conn, target.service, now - limit.per_seconds) >= limit.max:
            return tx.record(alert, Verdict.RATE_LIMITED, target), None
        inv_id = new_investigation_id()
        conn.execute(
            investigations.insert().values(
                id=inv_id,
                lease_key=target.lease_key,
                service=target.service,
                environment=target.environment,
                route=target.route,
                map_path=str(target.map_path),
                fingerprint=fp,
                title=alert.title[:500],
                status="queued",
                active=1,
                alert_count=1,
                created_at=now,
            )
        )
        tx.active[target.lease_key] = inv_id
        decision = tx.record(alert, Verdict.STARTED, target, inv_id)
        return decision, Ticket(inv_id, target.lease_key, fp)


class _Tx:
    """One transaction's writes, batched: the alert rows in one multi-row insert, the
    attach counts summed, each lease's active investigation read once."""

    def __init__(self, store: Store, conn: sa.Connection) -> None:
        self.store, self.conn = store, conn
        self.rows: list[dict[str, object]] = []
        self.counts: Counter[str] = Counter()
        self.active: dict[str, str | None] = {}

    def active_for(self, lease_key: str) -> str | None:
        if lease_key not in self.active:
            row = self.store.active_for(self.conn, lease_key)
            self.active[lease_key] = row.id if row else None
        return self.active[lease_key]

    def latest_for_fingerprint(self, fingerprint: str) -> InvestigationRow | None:
        self.flush()  # the answer may lie in rows this batch has not written yet
        return self.store.latest_for_fingerprint(self.conn, fingerprint)

    def record(
        self,
        alert: Alert,
        verdict: Verdict,
        target: Target | None,
        investigation_id: str | None = None,
    ) -> Decision:
        route = target.route if target else None
        self.rows.append(Store.alert_row(alert, verdict.value, route, investigation_id))
        return Decision(alert.fingerprint, verdict, investigation_id)

    def flush(self) -> None:
        self.store.insert_alerts(self.conn, self.rows)
        self.store.add_alert_counts(self.conn, self.counts)
        self.rows, self.counts = [], Counter()
