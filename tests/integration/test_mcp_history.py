"""``search_history``: registered because rootloop.memory offers a search; finds archived runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from rootloop.context import DebugContext, HistoryEntry
from rootloop.mcpserver import ServerConfig, build_server
from rootloop.mcpserver.server import memory_search_available
from rootloop.mcpserver.toolbox import HistoryResult
from rootloop.memory import Memory
from rootloop.models import Diagnosis, Finding, Status
from rootloop.redact import Redactor


@pytest.fixture
def archived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROOTLOOP_EMBEDDINGS", "off")
    monkeypatch.delenv("ROOTLOOP_MEMORY_DIR", raising=False)
    state = tmp_path / "state"
    diagnosis = Diagnosis(
        root_cause="redis",
        category="cache-oom",
        summary="redis at maxmemory under noeviction: writes fail with OOM",
        confidence=0.9,
    )
    ctx = DebugContext(
        service="cart",
        status="healthy",
        iteration=1,
        history=[
            HistoryEntry(
                iteration=1,
                diagnosis=diagnosis.summary,
                diagnosis_detail=diagnosis,
                action="infra fix - set Redis maxmemory-policy to allkeys-lru",
                result="success",
            )
        ],
    )
    finding = Finding(node="redis", skill="redis", status=Status.CRITICAL, summary="OOM writes")
    with Memory(state / "memory") as memory:
        memory.archive(ctx, [finding], Redactor())
    return state


async def test_search_history_finds_a_past_run(archived: Path) -> None:
    assert memory_search_available()
    async with Client(build_server(ServerConfig(state_root=archived))) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "search_history" in names
        result = await client.call_tool("search_history", {"query": "redis OOM noeviction"})
        empty = await client.call_tool("search_history", {"query": "kafka lag"})
    assert not result.is_error, result.content
    hits = HistoryResult.model_validate(result.structured_content).hits
    assert [h.service for h in hits] == ["cart"]
    assert hits[0].root_cause == "redis"
    assert HistoryResult.model_validate(empty.structured_content).hits == []
