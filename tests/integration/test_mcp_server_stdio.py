"""``rootloop mcp`` launched as a subprocess and driven over stdio by the official SDK client.

The example map is swept against real PostgreSQL and Redis; its HTTP nodes point at a
closed port. The PostgreSQL DSN carries a password the server (trust auth) never asks
for, so every answer can be checked for it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp_types import TextResourceContents

from rootloop.context import ContextStore, DebugContext, HistoryEntry
from rootloop.mcpserver.toolbox import DiagnoseResult, ReportResult, SweepResult
from rootloop.models import Finding, Status

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "payments-api" / "rootloop.yaml"
SECRET = "Sup3rS3cretPw"


def server_command() -> list[str]:
    """``rootloop mcp`` once the lead has wired it; the module itself until then."""
    from rootloop.cli import main

    script = Path(sys.executable).parent / "rootloop"
    if script.exists() and any(c.name == "mcp" for c in main.app.registered_commands):
        return [str(script), "mcp"]
    return [sys.executable, "-m", "rootloop.cli.mcp"]


@pytest.fixture
def env(pg_dsn: str, redis_url: str, closed_port: int, tmp_path: Path) -> dict[str, str]:
    scheme, rest = pg_dsn.split("://", 1)
    user, host = rest.split("@", 1)
    closed = f"http://127.0.0.1:{closed_port}"
    return {
        "PG_DSN": f"{scheme}://{user}:{SECRET}@{host}",
        "REDIS_URL": redis_url,
        "PAYMENTS_API_URL": closed,
        "API_GATEWAY_URL": closed,
        "NOTIFICATION_URL": closed,
        "ROOTLOOP_STATE_DIR": str(tmp_path / "state"),
    }


def params(env: dict[str, str], *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=server_command()[0],
        args=[*server_command()[1:], "-t", str(EXAMPLE), *extra],
        env=env,
        cwd=str(ROOT),
    )


def structured(result) -> dict:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    text = json.dumps(result.structured_content) + " ".join(
        getattr(c, "text", "") for c in result.content
    )
    assert SECRET not in text
    return result.structured_content


async def test_sweep_over_stdio_against_real_postgres_and_redis(env: dict[str, str]) -> None:
    async with Client(params(env), mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"sweep", "check_node", "diagnose", "get_debug_context", "get_report"} <= set(tools)
        assert "apply_action" not in tools and "run_investigation" not in tools
        assert tools["sweep"].annotations.read_only_hint is True
        assert tools["sweep"].output_schema is not None

        swept = SweepResult.model_validate(
            structured(await client.call_tool("sweep", {"map": str(EXAMPLE)}))
        )
        by_node = {f.node: f for f in swept.findings}
        assert swept.service == "payments-api"
        assert by_node["postgresql"].status is Status.OK, by_node["postgresql"].summary
        assert by_node["redis"].status is Status.OK, by_node["redis"].summary
        for name in ("api-gateway", "notification-svc", "payments-api/health"):
            assert by_node[name].status is Status.UNREACHABLE, by_node[name].summary
        assert swept.overall is Status.UNREACHABLE
        assert swept.counts["ok"] == 2 and swept.counts["unreachable"] == 3
        assert by_node["postgresql"].signals, "the postgres skill reports its signals"

        one = Finding.model_validate(
            structured(await client.call_tool("check_node", {"node": "redis"}))
        )
        assert one.node == "redis" and one.status is Status.OK

        bad = await client.call_tool("check_node", {"node": "redsi"})
        assert bad.is_error and "did you mean 'redis'" in bad.content[0].text


async def test_diagnose_proposes_without_applying(env: dict[str, str]) -> None:
    async with Client(params(env), mode="legacy") as client:
        result = DiagnoseResult.model_validate(structured(await client.call_tool("diagnose", {})))
    assert result.service == "payments-api"
    unhealthy = {f.node for f in result.findings if f.status is not Status.OK}
    assert unhealthy == {"api-gateway", "notification-svc", "payments-api/health"}
    assert result.diagnosis.root_cause in {"api-gateway", "notification-svc", "payments-api"}
    assert result.diagnosis.candidates
    if result.proposed_action is not None:
        assert result.gate is not None  # what the gates would say, nothing applied


async def test_runs_reports_and_map_resources(env: dict[str, str]) -> None:
    store = ContextStore(Path(env["ROOTLOOP_STATE_DIR"]))
    built = DebugContext(
        service="payments-api",
        topology_file=str(EXAMPLE),
        status="escalated",
        status_reason="budget spent",
        iteration=1,
        history=[
            HistoryEntry(
                iteration=1,
                diagnosis=f"postgres down (dsn postgresql://app:{SECRET}@db)",
                action="infra fix - restart",
                result="failed: still down",
            )
        ],
    )
    store.save(built)
    with_body = DebugContext(service="payments-api", topology_file=str(EXAMPLE))
    store.save(with_body)
    body = f"## rootloop: fixed\nconnection was postgresql://app:{SECRET}@db/x\n"
    (store.run_dir(with_body.run_id) / "pr.md").write_text(body, encoding="utf-8")

    async with Client(params(env), mode="legacy") as client:
        ctx = DebugContext.model_validate(
            structured(await client.call_tool("get_debug_context", {"run_id": built.run_id}))
        )
        assert ctx.history[0].result == "failed: still down"
        assert "***" in ctx.history[0].diagnosis

        report = ReportResult.model_validate(
            structured(await client.call_tool("get_report", {"run_id": built.run_id}))
        )
        assert report.source == "built" and "payments-api" in report.markdown

        stored = ReportResult.model_validate(
            structured(await client.call_tool("get_report", {"run_id": with_body.run_id}))
        )
        assert stored.source == "pr.md" and stored.markdown.startswith("## rootloop: fixed")

        missing = await client.call_tool("get_report", {"run_id": "no-such-run"})
        assert missing.is_error and "no run 'no-such-run'" in missing.content[0].text

        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"rootloop://maps/payments-api", "rootloop://runs"} <= uris
        map_text = (await client.read_resource("rootloop://maps/payments-api")).contents[0]
        assert isinstance(map_text, TextResourceContents) and "${PG_DSN}" in map_text.text
        runs = json.loads((await client.read_resource("rootloop://runs")).contents[0].text)
        assert {r["run_id"] for r in runs} == {built.run_id, with_body.run_id}
        via_resource = await client.read_resource(f"rootloop://reports/{with_body.run_id}")
        assert SECRET not in via_resource.contents[0].text
        assert "***" in via_resource.contents[0].text


async def test_maps_outside_the_configured_ones_are_refused(
    env: dict[str, str], tmp_path: Path
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("service: other\n", encoding="utf-8")
    async with Client(params(env), mode="legacy") as client:
        result = await client.call_tool("sweep", {"map": str(other)})
    assert result.is_error
    assert "not one this server was started with" in result.content[0].text
