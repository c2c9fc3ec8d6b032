"""Acting tools: absent unless enabled; when enabled, every gate still decides first.

Driven in-process with the SDK's client; the actions land on real Redis and PostgreSQL,
so "refused" and "applied" are checked on the servers themselves, not on return values.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import psycopg
import pytest
import redis
from mcp import Client

from rootloop.actions.gates import approval_key
from rootloop.actions.types import parse_action
from rootloop.context import ContextStore
from rootloop.mcpserver import ACTION_TOOLS, READ_TOOLS, ServerConfig, build_server
from rootloop.mcpserver.toolbox import ActionOutcome

POLICY = {"kind": "set-redis-policy", "target": "redis", "policy": "allkeys-lru"}


def write_map(tmp_path: Path, name: str, environment: str, redis_url: str, pg_dsn: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            service: {name}
            environment: {environment}
            downstream:
              - name: redis
                type: cache
                skill: redis
                url: {redis_url}
                ping_warn_ms: 5000  # a loaded box's PING is no finding here
              - name: postgresql
                type: db
                skill: postgres
                dsn: {pg_dsn}
            """
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def lower(tmp_path: Path, redis_url: str, pg_dsn: str) -> Path:
    return write_map(tmp_path, "cart", "staging", redis_url, pg_dsn)


@pytest.fixture
def prod(tmp_path: Path, redis_url: str, pg_dsn: str) -> Path:
    return write_map(tmp_path, "cart-live", "production", redis_url, pg_dsn)


def policy_of(url: str) -> str:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return client.config_get("maxmemory-policy")["maxmemory-policy"]
    finally:
        client.close()


async def tool_names(config: ServerConfig) -> dict[str, object]:
    async with Client(build_server(config)) as client:
        return {t.name: t for t in (await client.list_tools()).tools}


async def call(config: ServerConfig, name: str, args: dict) -> ActionOutcome:
    async with Client(build_server(config)) as client:
        result = await client.call_tool(name, args)
    assert not result.is_error, result.content
    return ActionOutcome.model_validate(result.structured_content)


async def test_action_tools_exist_only_when_enabled(lower: Path, tmp_path: Path) -> None:
    read_only = await tool_names(ServerConfig(maps=[lower], state_root=tmp_path))
    assert set(READ_TOOLS) <= set(read_only)
    assert not set(ACTION_TOOLS) & set(read_only)

    acting = await tool_names(ServerConfig(maps=[lower], state_root=tmp_path, allow_actions=True))
    assert set(ACTION_TOOLS) <= set(acting)
    assert acting["apply_action"].annotations.destructive_hint is True  # type: ignore[attr-defined]

    async with Client(build_server(ServerConfig(maps=[lower], state_root=tmp_path))) as client:
        result = await client.call_tool("apply_action", {"action": POLICY})
    assert result.is_error and "apply_action" in result.content[0].text


async def test_production_map_is_refused_and_nothing_changes(
    prod: Path, tmp_path: Path, redis_url: str
) -> None:
    config = ServerConfig(maps=[prod], state_root=tmp_path / "state", allow_actions=True)
    outcome = await call(config, "apply_action", {"action": POLICY})
    assert outcome.decision == "refuse" and outcome.gate == "production"
    assert outcome.applied is False
    assert policy_of(redis_url) == "noeviction"
    assert ContextStore(tmp_path / "state").list() == []


async def test_allowed_action_is_applied_and_recorded(
    lower: Path, tmp_path: Path, redis_url: str
) -> None:
    state = tmp_path / "state"
    config = ServerConfig(maps=[lower], state_root=state, allow_actions=True)
    outcome = await call(config, "apply_action", {"action": POLICY, "map": "cart"})
    assert outcome.decision == "allow" and outcome.applied, outcome
    assert policy_of(redis_url) == "allkeys-lru"
    ctx = ContextStore(state).load(outcome.run_id or "")
    assert ctx.history[-1].action_fingerprint == parse_action(POLICY).fingerprint()
    assert ctx.history[-1].phase == "applied" and "noeviction" in (ctx.history[-1].undo or "")


async def test_schema_change_waits_for_a_human_then_runs(
    lower: Path, tmp_path: Path, pg_dsn: str
) -> None:
    state = tmp_path / "state"
    config = ServerConfig(maps=[lower], state_root=state, allow_actions=True)
    migration = {
        "kind": "run-migration",
        "target": "postgresql",
        "name": "add-orders",
        "sql": "CREATE TABLE orders (id int primary key)",
    }
    waiting = await call(config, "apply_action", {"action": migration})
    assert waiting.decision == "approval" and waiting.gate == "schema" and not waiting.applied
    assert waiting.run_id and f"rootloop approve {waiting.run_id}" in (waiting.next_step or "")
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT to_regclass('orders')").fetchone() == (None,)

    # what 'rootloop approve RUN --gate schema --no-resume' records
    store = ContextStore(state)
    ctx = store.load(waiting.run_id)
    assert ctx.pending_gate is not None and ctx.pending_gate.gate == "schema"
    ctx.approvals.append(approval_key("schema", parse_action(migration)))
    store.save(ctx)

    done = await call(config, "apply_action", {"action": migration, "run_id": waiting.run_id})
    assert done.decision == "allow" and done.applied, done
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT to_regclass('orders')::text").fetchone() == ("orders",)
    assert len(store.load(waiting.run_id).history) == 1  # the waiting entry, now applied


async def test_run_investigation_runs_the_loop_and_reports(lower: Path, tmp_path: Path) -> None:
    config = ServerConfig(maps=[lower], state_root=tmp_path / "state", allow_actions=True)
    async with Client(build_server(config)) as client:
        run = await client.call_tool("run_investigation", {"reasoner": "rules"})
        assert not run.is_error, run.content
        run_id = run.structured_content["run_id"]
        report = await client.call_tool("get_report", {"run_id": run_id})
    # both stores answer: nothing to fix, and nothing claimed fixed
    assert run.structured_content["status"] == "not-reproduced"
    assert run.structured_content["iterations"] == 0
    assert report.structured_content["source"] == "pr.md"
    assert run_id in report.structured_content["markdown"]
