"""Storms: what intake does with an alert before any investigation work starts.

The rules, in order, each leaving a recorded verdict:

- not routable → ``unrouted``; not an actionable state → ``ignored``;
- resolved → ``resolved``, written on the investigation the alert belonged to;
- an investigation is active for the alert's service and environment →
  ``attached`` (resends, repeats and sibling alerts all join the one run);
- the alert's last investigation ended less than the flap window ago → ``flapping``;
- the service started its share of investigations this period → ``rate-limited``;
- else a new investigation → ``started``, and the caller enqueues it.

Admission is serialised per process (with group commit, so a storm costs one
transaction per batch, not per alert) and guarded across processes by the
database's unique index on active investigations: the loser of a race sees an
``IntegrityError``, retries, and attaches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rootloop.serve.alerts import Alert, Verdict
from rootloop.serve.config import Storms
from rootloop.serve.routing import Router, Target
from rootloop.serve.store import Store, investigations, new_investigation_id


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
    done: bool = False


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
        self._commit = threading.Lock()  # one writer at a time in this process
        self._pending_lock = threading.Lock()
        self._pending: list[_Job] = []

    def admit(self, alerts: list[Alert]) -> list[Decision]:
        """Decide and record every alert; enqueue the investigations that start.

        Group commit: requests arriving while another is being written wait for the lock,
        and whoever takes it next writes every waiting request in one transaction. Under a
        storm that is one fsync for hundreds of alerts instead of one each.
        """
        job = _Job([(a, self.router.route(a)) for a in alerts])
        with self._pending_lock:
            self._pending.append(job)
        with self._commit:
            if not job.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                self._write(batch)
        if job.error is not None:
            raise job.error
        return job.decisions

    def _write(self, batch: list[_Job]) -> None:
        try:
            with self.store.engine.begin() as conn:
                results = [[self._decide(conn, a, t) for a, t in job.items] for job in batch]
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
                job.error, job.done = exc, True
            return
        for job, decided in zip(batch, results, strict=True):
            try:
                for _decision, ticket in decided:
                    if ticket is not None:
                        self.enqueue(ticket)
            except Exception as exc:  # recorded, not queued: the reconciler queues it later
                job.error = exc
            job.decisions = [d for d, _ in decided]
            job.done = True

    def _decide_alone(self, alert: Alert, target: Target | None) -> tuple[Decision, Ticket | None]:
        for attempt in range(3):
            try:
                with self.store.engine.begin() as conn:
                    return self._decide(conn, alert, target)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _decide(
        self, conn: sa.Connection, alert: Alert, target: Target | None
    ) -> tuple[Decision, Ticket | None]:
        fp = alert.fingerprint
        if alert.status == "ignored":
            return self._record(conn, alert, Verdict.IGNORED, target), None
        if target is None:
            return self._record(conn, alert, Verdict.UNROUTED, None), None
        if alert.status == "resolved":
            owner = self.store.latest_for_fingerprint(conn, fp)
            if owner is not None:
                conn.execute(
                    investigations.update()
                    .where(investigations.c.id == owner.id)
                    .values(resolved_at=self.clock())
                )
            return self._record(conn, alert, Verdict.RESOLVED, target, owner and owner.id), None
        active = self.store.active_for(conn, target.lease_key)
        if active is not None:
            conn.execute(
                investigations.update()
                .where(investigations.c.id == active.id)
                .values(alert_count=investigations.c.alert_count + 1)
            )
            return self._record(conn, alert, Verdict.ATTACHED, target, active.id), None
        now = self.clock()
        last = self.store.latest_for_fingerprint(conn, fp)
        window = self.storms.flap_window_seconds
        if last is not None and last.ended_at is not None and now - last.ended_at < window:
            return self._record(conn, alert, Verdict.FLAPPING, target, last.id), None
        limit = self.storms.rate_limit
        if self.store.started_since(conn, target.service, now - limit.per_seconds) >= limit.max:
            return self._record(conn, alert, Verdict.RATE_LIMITED, target), None
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
        decision = self._record(conn, alert, Verdict.STARTED, target, inv_id)
        return decision, Ticket(inv_id, target.lease_key, fp)

    def _record(
        self,
        conn: sa.Connection,
        alert: Alert,
        verdict: Verdict,
        target: Target | None,
        investigation_id: str | None = None,
    ) -> Decision:
        self.store.record_alert(
            conn, alert, verdict.value, target.route if target else None, investigation_id
        )
        return Decision(alert.fingerprint, verdict, investigation_id)
