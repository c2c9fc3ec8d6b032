"""The MCP acting path asks the same gates: a wrong target, a production child map, a
production tag, a propose level. Checked on the real Redis, not on return values."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rootloop.mcpserver import ServerConfig
from tests.integration.test_mcp_actions import POLICY, call, policy_of, write_map


def parent_with_child(tmp_path: Path, redis_url: str, pg_dsn: str, child_env: str) -> Path:
    (tmp_path / "ledger.yaml").write_text(
        textwrap.dedent(
            f"""\
            service: ledger
            environment: {child_env}
            downstream:
              - {{name: ledger-cache, type: cache, skill: redis, url: "{redis_url}"}}
            """
        ),
        encoding="utf-8",
    )
    parent = write_map(tmp_path, "cart", "staging", redis_url, pg_dsn)
    parent.write_text(
        parent.read_text()
        + "  - {name: ledger, type: http, skill: http-health, url: 'http://127.0.0.1:9/',"
        " map: ledger.yaml}\n",
        encoding="utf-8",
    )
    return parent


@pytest.mark.parametrize(
    ("action", "gate"),
    [
        ({**POLICY, "target": "cart"}, "target"),  # the case: the service has no redis
        ({**POLICY, "target": "postgresql"}, "target"),
        ({**POLICY, "target": "ledger-cache"}, "production"),  # the child map is production
        ({**POLICY, "target": "ledger"}, "production"),
    ],
)
async def test_mcp_refuses_and_redis_is_untouched(
    tmp_path: Path, redis_url: str, pg_dsn: str, action: dict, gate: str
) -> None:
    parent = parent_with_child(tmp_path, redis_url, pg_dsn, "production")
    config = ServerConfig(maps=[parent], state_root=tmp_path / "state", allow_actions=True)
    outcome = await call(config, "apply_action", {"action": action, "map": "cart"})
    assert (outcome.decision, outcome.gate, outcome.applied) == ("refuse", gate, False), outcome
    assert policy_of(redis_url) == "noeviction"


async def test_mcp_propose_level_waits_for_a_human(
    tmp_path: Path, redis_url: str, pg_dsn: str
) -> None:
    path = write_map(tmp_path, "cart", "staging", redis_url, pg_dsn)
    path.write_text(path.read_text() + "policy: {autonomy: propose}\n", encoding="utf-8")
    config = ServerConfig(maps=[path], state_root=tmp_path / "state", allow_actions=True)
    outcome = await call(config, "apply_action", {"action": POLICY})
    assert (outcome.decision, outcome.gate) == ("approval", "autonomy")
    assert policy_of(redis_url) == "noeviction"
