"""The declared mapping of the ``mcp`` skill: paths, conditions and templates (no server)."""

from __future__ import annotations

import pytest
from mcp_types import CallToolResult, TextContent
from pydantic import ValidationError

from rootloop.models import Status
from rootloop.skills.base import Node
from rootloop.skills.mcp_client import McpSettings, McpSkill, When, lookup, render

DATA = {"status": "Down", "latency_ms": "812", "deps": [{"name": "db", "ok": False}], "n": 0}


def test_lookup_walks_dicts_and_lists() -> None:
    assert lookup(DATA, "deps.0.name") == (True, "db")
    assert lookup(DATA, "deps.-1.ok") == (True, False)
    assert lookup(DATA, "deps.3.name") == (False, None)
    assert lookup(DATA, "missing") == (False, None)
    assert lookup(None, "status") == (False, None)


@pytest.mark.parametrize(
    ("when", "text", "expected"),
    [
        ({"field": "status", "equals": "down"}, "", True),  # case-insensitive strings
        ({"field": "status", "not_equals": "down"}, "", False),
        ({"field": "status", "one_of": ["degraded", "down"]}, "", True),
        ({"field": "latency_ms", "gt": 500}, "", True),  # numeric strings compare as numbers
        ({"field": "latency_ms", "lte": 500}, "", False),
        ({"field": "deps.0.ok", "equals": False}, "", True),
        ({"field": "n"}, "", False),  # field alone: present and truthy
        ({"field": "missing", "exists": False}, "", True),
        ({"field": "missing", "equals": None}, "", False),
        ({"text_contains": "ERROR"}, "an error occurred", True),
        ({"text_matches": r"\b5\d\d\b"}, "HTTP 503 from upstream", True),
        ({"text_contains": "error", "field": "status", "equals": "up"}, "error", False),
    ],
)
def test_conditions(when: dict, text: str, expected: bool) -> None:
    assert When.model_validate(when).matches(DATA, text) is expected


def test_bad_conditions_are_refused() -> None:
    with pytest.raises(ValidationError, match="add 'field: <path>'"):
        When.model_validate({"gt": 3})
    with pytest.raises(ValidationError, match="needs a condition"):
        When.model_validate({})
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        When.model_validate({"text_matches": "(unclosed"})


def test_templates_prefer_the_result_and_fall_back_to_the_finding() -> None:
    fields = {"node": "api", "status": Status.CRITICAL, "text": "first line", "tool": "t"}
    assert render("{node}: {status} via {_status} ({deps.0.name})", DATA, fields) == (
        "api: Down via critical (db)"
    )
    assert render("{nothing} here", DATA, fields) == "? here"
    assert "template error" in render("{unclosed", DATA, fields)


def test_json_text_is_read_as_structured_data() -> None:
    settings = McpSettings(
        command="x",
        tool="health",
        status_rules=[{"when": {"field": "state", "equals": "red"}, "status": "critical"}],
        summary_field="detail",
    )
    node = Node(
        name="svc",
        type="app",
        skill="mcp",
        role="downstream",
        component="svc",
        service="s",
        timeout=5,
        settings=settings,
    )
    result = CallToolResult(
        content=[TextContent(type="text", text='{"state": "red", "detail": "3 of 5 down"}')]
    )
    finding = McpSkill().map_result(node, settings, result)
    assert finding.status is Status.CRITICAL and finding.summary == "3 of 5 down"
