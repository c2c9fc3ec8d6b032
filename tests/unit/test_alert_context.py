"""The alert a run carries: its query, read from what the sender gave."""

from __future__ import annotations

from rootloop.context import DebugContext
from rootloop.models import AlertContext, expr_of_generator_url


def test_the_query_comes_from_the_generator_url():
    url = "http://prom:9090/graph?g0.expr=rate%28errors_total%5B5m%5D%29+%3E+0.05&g0.tab=1"
    assert expr_of_generator_url(url) == "rate(errors_total[5m]) > 0.05"
    assert AlertContext(generator_url=url).query == "rate(errors_total[5m]) > 0.05"


def test_an_explicit_expression_wins_and_a_url_without_one_gives_none():
    assert AlertContext(expr=" up == 0 ", generator_url="http://p/graph?g0.expr=x").query == (
        "up == 0"
    )
    assert AlertContext(generator_url="http://p/graph?g0.tab=1").query is None
    assert AlertContext(generator_url="not a url at all").query is None
    assert AlertContext().query is None


def test_the_alert_survives_the_debug_context_round_trip():
    alert = AlertContext(source="alertmanager", labels={"alertname": "HighErrors"}, expr="up")
    ctx = DebugContext(service="svc", environment="staging", alert=alert)
    again = DebugContext.model_validate_json(ctx.model_dump_json())
    assert again.alert == alert and again.alert.name == "HighErrors"
