"""A real fault rootloop cannot act on: it must not act, and must point a human at the
right node.

The fault: Redis refuses new clients at ``maxclients``. Memory is not full and no
limit is set, so the cache-full signature's preconditions do not hold and changing
the eviction policy (what a careless signature would do) is not on the table. The
client-limit signature names it, but Redis refuses rootloop's connection too and no
runbook rung acts on it: rootloop escalates with redis as its top suspect.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from rootloop import runner
from rootloop.events import Event
from rootloop.reasoning.rules import RulesReasoner
from rootloop_lab import Lab
from rootloop_lab.symptoms import wait_for_symptoms

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("lab") / "lab")
    saved = dict(os.environ)
    try:
        yield lab
    finally:
        lab.down()
        os.environ.clear()
        os.environ.update(saved)


def test_clients_refused_at_maxclients_escalates_with_redis_among_top_suspects(
    lab: Lab, tmp_path: Path
) -> None:
    lab.reset()
    os.environ.update(lab.env())
    state = lab.state()
    # the injecting connection stays open: it is the one that can undo the fault
    admin = redis.Redis.from_url(state.redis_url, socket_timeout=10)
    before = admin.config_get("maxclients")["maxclients"]
    policy_before = admin.config_get("maxmemory-policy")["maxmemory-policy"]
    admin.config_set("maxclients", int(admin.info("clients")["connected_clients"]))
    try:
        wait_for_symptoms(lab.map_file, timeout=90)
        events: list[Event] = []
        session = runner.Session.open(lab.map_file, tmp_path / "state", with_memory=False)
        ctx = session.new_context(lab.map_file)
        ctx = asyncio.run(runner.run(session, ctx, [events.append], RulesReasoner()))
        policy = admin.config_get("maxmemory-policy")["maxmemory-policy"]
    finally:
        admin.config_set("maxclients", int(before))
        admin.close()

    assert ctx.status == "escalated", ctx.status_reason
    assert [e for e in events if e.kind == "action"] == []  # nothing was changed
    assert all(h.action_detail is None for h in ctx.history)
    assert policy == policy_before  # the eviction policy, which nobody needed changed, stayed
    top = [c.node for c in ctx.suspects[:3]]
    assert "redis" in top, ctx.suspects
    redis_suspect = next(c for c in ctx.suspects if c.node == "redis")
    assert redis_suspect.evidence
    assert any("client-limit" in r for r in redis_suspect.reasons)
    pr_body = (session.store.run_dir(ctx.run_id) / "pr.md").read_text()
    assert "Ranked suspects" in pr_body and "fixed and verified" not in pr_body
