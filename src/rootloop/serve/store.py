"""Alerts, investigations and verdicts in SQL: SQLite on one machine, PostgreSQL for a fleet.

Every alert that reaches intake is a row here with its verdict, whether it
started an investigation, joined one, or was held back — nothing is dropped
without a trace. One investigation per service and environment is enforced by
the database itself (a unique index over the active rows), so two intake
processes racing on one alert cannot both start one.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from rootloop.serve.alerts import Alert

ACTIVE = ("queued", "running", "paused")

metadata = sa.MetaData()

investigations = sa.Table(
    "rootloop_serve_investigations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("lease_key", sa.String(300), nullable=False),
    sa.Column("service", sa.String(200), nullable=False),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("route", sa.String(100), nullable=False),
    sa.Column("map_path", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(1200), nullable=False),
    sa.Column("title", sa.Text, nullable=False, default=""),
    sa.Column("status", sa.String(20), nullable=False),  # queued | running | paused | ended
    sa.Column("gate", sa.String(40), nullable=True),  # while paused: the gate waiting
    # 1 while queued or running, NULL after: the unique index below covers only active rows.
    sa.Column("active", sa.Integer, nullable=True),
    sa.Column("outcome", sa.String(40), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("run_id", sa.String(100), nullable=True),
    sa.Column("alert_count", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("ended_at", sa.Float, nullable=True),
    sa.Column("resolved_at", sa.Float, nullable=True),
    sa.Index(
        "rootloop_serve_one_active_per_lease",
        "lease_key",
        unique=True,
        sqlite_where=sa.text("active = 1"),
        postgresql_where=sa.text("active = 1"),
    ),
    sa.Index("rootloop_serve_inv_service_created", "service", "created_at"),
)

alerts = sa.Table(
    "rootloop_serve_alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("fingerprint", sa.String(1200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("verdict", sa.String(20), nullable=False),
    sa.Column("route", sa.String(100), nullable=True),
    sa.Column("investigation_id", sa.String(64), nullable=True),
    sa.Column("title", sa.Text, nullable=False, default=""),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("annotations", sa.Text, nullable=False),
    sa.Column("generator_url", sa.Text, nullable=True),
    sa.Index("rootloop_serve_alerts_fp", "fingerprint", "received_at"),
    sa.Index("rootloop_serve_alerts_verdict", "verdict", "received_at"),
)


def new_investigation_id() -> str:
    return time.strftime("inv-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(4)


def sqlalchemy_url(url: str) -> str:
    """psycopg 3 is the PostgreSQL driver rootloop ships; SQLAlchemy needs it named."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, pool_pre_ping=True
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=10)


@dataclass
class InvestigationRow:
    id: str
    lease_key: str
    service: str
    environment: str
    route: str
    map_path: str
    fingerprint: str
    title: str
    status: str
    gate: str | None
    active: int | None
    outcome: str | None
    reason: str | None
    run_id: str | None
    alert_count: int
    created_at: float
    started_at: float | None
    ended_at: float | None
    resolved_at: float | None

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("map_path", "active")}


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        store = cls(make_engine(url))
        metadata.create_all(store.engine)
        store._add_missing_columns()
        return store

    def _add_missing_columns(self) -> None:
        """A store written by an older rootloop lacks the columns added since (each is
        nullable, so adding it loses nothing); create_all never alters a table."""
        inspector = sa.inspect(self.engine)
        for table in (investigations, alerts):
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have or not column.nullable:
                    continue
                kind = column.type.compile(dialect=self.engine.dialect)
                with self.engine.begin() as conn:
                    conn.execute(
                        sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
                    )

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- writes, inside a caller's transaction -------------------------------
    @staticmethod
    def alert_row(
        alert: Alert, verdict: str, route: str | None, investigation_id: str | None
    ) -> dict[str, Any]:
        """The row ``insert_alerts`` writes for one alert and its verdict."""
        return {
            "received_at": alert.received_at.timestamp(),
            "source": alert.source,
            "fingerprint": alert.fingerprint,
            "status": alert.status,
            "verdict": verdict,
            "route": route,
            "investigation_id": investigation_id,
            "title": alert.title[:500],
            "labels": json.dumps(alert.labels, sort_keys=True),
            "annotations": json.dumps(alert.annotations, sort_keys=True),
            "generator_url": alert.generator_url or None,
        }

    @staticmethod
    def insert_alerts(conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(alerts.insert(), rows)

    @staticmethod
    def add_alert_counts(conn: Connection, counts: dict[str, int]) -> None:
        for inv_id, n in counts.items():
            conn.execute(
                investigations.update()
                .where(investigations.c.id == inv_id)
                .values(alert_count=investigations.c.alert_count + n)
            )

    @staticmethod
    def active_for(conn: Connection, lease_key: str) -> InvestigationRow | None:
        row = conn.execute(
            investigations.select().where(
                investigations.c.lease_key == lease_key, investigations.c.active == 1
            )
        ).first()
        return InvestigationRow(**row._mapping) if row else None

    @staticmethod
    def latest_for_fingerprint(conn: Connection, fingerprint: str) -> InvestigationRow | None:
        """The newest investigation this alert started or joined."""
        inv_id = conn.execute(
            sa.select(alerts.c.investigation_id)
            .where(
                alerts.c.fingerprint == fingerprint,
                alerts.c.verdict.in_(("started", "attached")),
            )
            .order_by(alerts.c.id.desc())
            .limit(1)
        ).scalar()
        if inv_id is None:
            return None
        row = conn.execute(investigations.select().where(investigations.c.id == inv_id)).first()
        return InvestigationRow(**row._mapping) if row else None

    @staticmethod
    def started_since(conn: Connection, service: str, since: float) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(investigations)
                .where(investigations.c.service == service, investigations.c.created_at >= since)
            ).scalar()
            or 0
        )

    # -- the workflow's writes ------------------------------------------------
    def mark_running(self, inv_id: str, run_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                investigations.update()
                .where(investigations.c.id == inv_id, investigations.c.status == "queued")
                .values(status="running", started_at=time.time(), run_id=run_id)
            )

    def mark_paused(self, inv_id: str, gate: str, reason: str) -> None:
        """Waiting for a human: the lease stays held, so new alerts still attach."""
        with self.engine.begin() as conn:
            conn.execute(
                investigations.update()
                .where(investigations.c.id == inv_id, investigations.c.active == 1)
                .values(status="paused", gate=gate, reason=reason[:2000])
            )

    def mark_resumed(self, inv_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                investigations.update()
                .where(investigations.c.id == inv_id, investigations.c.status == "paused")
                .values(status="running", gate=None)
            )

    def finish(self, inv_id: str, outcome: str, reason: str, run_id: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                investigations.update()
                .where(investigations.c.id == inv_id, investigations.c.active == 1)
                .values(
                    status="ended",
                    gate=None,
                    active=None,
                    outcome=outcome,
                    reason=reason[:2000],
                    run_id=run_id,
                    ended_at=time.time(),
                )
            )

    # -- reads ----------------------------------------------------------------
    def investigation(self, inv_id: str) -> InvestigationRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(investigations.select().where(investigations.c.id == inv_id)).first()
        return InvestigationRow(**row._mapping) if row else None

    def investigations(self, limit: int = 100, active_only: bool = False) -> list[InvestigationRow]:
        query = investigations.select().order_by(investigations.c.created_at.desc()).limit(limit)
        if active_only:
            query = query.where(investigations.c.active == 1)
        with self.engine.connect() as conn:
            return [InvestigationRow(**r._mapping) for r in conn.execute(query)]

    def alerts(
        self, *, verdict: str | None = None, investigation_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        query = alerts.select().order_by(alerts.c.id.desc()).limit(limit)
        if verdict is not None:
            query = query.where(alerts.c.verdict == verdict)
        if investigation_id is not None:
            query = query.where(alerts.c.investigation_id == investigation_id)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["labels"] = json.loads(row["labels"])
            row["annotations"] = json.loads(row["annotations"])
        return rows

    def first_alert(self, investigation_id: str) -> dict[str, Any] | None:
        """The alert that started an investigation (labels and annotations decoded)."""
        query = (
            alerts.select()
            .where(
                alerts.c.investigation_id == investigation_id,
                alerts.c.verdict == "started",
            )
            .order_by(alerts.c.id)
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        got = dict(row._mapping)
        got["labels"] = json.loads(got["labels"])
        got["annotations"] = json.loads(got["annotations"])
        return got

    def counts(self) -> dict[str, dict[str, int]]:
        """Investigations by status and by outcome: the metrics a whole fleet agrees on."""
        with self.engine.connect() as conn:
            by_status: dict[str, int] = dict(
                conn.execute(
                    sa.select(investigations.c.status, sa.func.count()).group_by(
                        investigations.c.status
                    )
                ).all()
            )
            by_outcome: dict[str, int] = dict(
                conn.execute(
                    sa.select(investigations.c.outcome, sa.func.count())
                    .where(investigations.c.outcome.is_not(None))
                    .group_by(investigations.c.outcome)
                ).all()
            )
        return {"status": by_status, "outcome": by_outcome}
