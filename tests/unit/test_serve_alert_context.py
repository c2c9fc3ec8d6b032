"""The alert that started an investigation reaches the run, expression included.

Alertmanager gives the rule's expression only inside ``generatorURL``; the run needs it
to ask the map's Prometheus again before it may say "not reproduced" (#13).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from rootloop.models import AlertContext
from rootloop.serve.durable import _alert_context
from rootloop.serve.sources.alertmanager import AmWebhook, to_alerts
from rootloop.serve.store import Store

EXPR = 'sum(rate(http_requests_total{code=~"5.."}[1m])) > 0'
URL = "http://prom:9090/graph?g0.expr=sum%28rate%28http_requests_total%7Bcode%3D~%225..%22%7D%5B1m%5D%29%29+%3E+0&g0.tab=1"


def webhook() -> AmWebhook:
    return AmWebhook.model_validate(
        {
            "version": "4",
            "groupKey": '{}:{alertname="HighErrors"}',
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "HighErrors", "service": "checkout"},
                    "annotations": {"summary": "5xx"},
                    "generatorURL": URL,
                    "fingerprint": "abc",
                }
            ],
        }
    )


def test_the_starting_alerts_expression_reaches_the_run(tmp_path: Path) -> None:
    (alert,) = to_alerts(webhook())
    assert alert.generator_url == URL
    store = Store.open(f"sqlite:///{tmp_path / 'serve.db'}")
    with store.engine.begin() as conn:
        Store.insert_alerts(conn, [store.alert_row(alert, "started", "checkout", "inv-1")])
        Store.insert_alerts(conn, [store.alert_row(alert, "attached", "checkout", "inv-1")])
    ctx = AlertContext.model_validate_json(_alert_context(store.first_alert("inv-1")))
    assert ctx.query == EXPR
    assert ctx.labels["service"] == "checkout" and ctx.source == "alertmanager"
    assert _alert_context(store.first_alert("inv-2")) == ""


def test_a_store_from_before_the_column_gains_it_and_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    Store.open(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # an older store: the table without generator_url
        conn.execute(sa.text("ALTER TABLE rootloop_serve_alerts DROP COLUMN generator_url"))
    (alert,) = to_alerts(webhook())
    store = Store.open(url)
    with store.engine.begin() as conn:
        Store.insert_alerts(conn, [store.alert_row(alert, "started", "checkout", "inv-1")])
    got = store.first_alert("inv-1")
    assert got is not None and got["generator_url"] == URL
