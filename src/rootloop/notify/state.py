"""What has been said about each run, kept in SQL so a restart never repeats a message.

One row per run: the last status and gate the watcher reported, and where its
Slack thread and its gate message are (to reply in the thread, and to update the
gate message when someone decides elsewhere).
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

runs = sa.Table(
    "rootloop_notify_runs",
    metadata,
    sa.Column("run_id", sa.String(100), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("gate_key", sa.String(300), nullable=True),  # gate:iteration last announced
    sa.Column("slack_channel", sa.String(100), nullable=True),
    sa.Column("slack_ts", sa.String(40), nullable=True),
    sa.Column("slack_gate_ts", sa.String(40), nullable=True),
    sa.Column("slack_gate_text", sa.Text, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)


class NotifyState:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(runs.select().where(runs.c.run_id == run_id)).first()
        return dict(row._mapping) if row else None

    def put(self, run_id: str, **values: Any) -> None:
        values["updated_at"] = time.time()
        with self.engine.begin() as conn:
            done = conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))
            if done.rowcount == 0:
                conn.execute(runs.insert().values(**{"run_id": run_id, "status": "", **values}))

    def all(self) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            return {r.run_id: dict(r._mapping) for r in conn.execute(runs.select())}
