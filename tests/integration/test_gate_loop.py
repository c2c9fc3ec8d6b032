"""A refusal is an outcome of the run: the loop with the real executors, on real resources.

The reasoner is scripted (it always proposes the same action); everything else is the
product: the loop, the gatekeeper, the dispatcher, the ECS executor on moto's server and
PostgreSQL. The resource is tagged production on the emulator only — the map says
staging — so only the executor's own check on the live resource can stop it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import yaml

import rootloop
from rootloop import topology
from rootloop.actions.dispatch import Dispatcher
from rootloop.actions.gates import approval_key
from rootloop.actions.types import BaseAction, RunMigration, SetRedisPolicy, SetTaskResources
from rootloop.cli.run import EXIT
from rootloop.context import ContextStore, DebugContext
from rootloop.events import Event
from rootloop.loop import Loop
from rootloop.models import Diagnosis
from rootloop.reasoning.base import Proposal
from tests.integration.aws.test_ecs_actions import seed
from tests.integration.test_gate_executors import ecs_state
from tests.unit.test_model_support import FixedReasoner

DIAGNOSIS = Diagnosis(root_cause="orders", category="oom", summary="OOMKilled", confidence=0.9)


class CountingDispatcher(Dispatcher):
    calls = 0

    async def apply(self, action: BaseAction, *args: Any, **kw: Any) -> Any:
        self.calls += 1
        return await super().apply(action, *args, **kw)


def run_loop(topo: topology.Topology, state: Path, action: BaseAction, ctx: DebugContext | None):
    events: list[Event] = []
    executor = CountingDispatcher(topo, state)
    loop = Loop(
        topology=topo,
        store=ContextStore(state),
        reasoner=FixedReasoner(Proposal(diagnosis=DIAGNOSIS, action=action)),
        executor=executor,
        events=events.append,
    )
    ctx = ctx or DebugContext(service=topo.service, environment=topo.environment)
    return asyncio.run(loop.run(ctx)), executor, events


def ecs_map(tmp_path: Path, endpoint: str) -> topology.Topology:
    data = {
        "service": "orders",
        "environment": "staging",
        "self": {
            "compute": {
                "skill": "aws-ecs",
                "cluster": "staging",
                "service": "orders-api",
                "region": "us-east-1",
                "endpoint_url": endpoint,
            }
        },
    }
    path = tmp_path / "orders.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return rootloop.load_map(path, env={})


def test_an_executor_refusal_on_a_production_tagged_service_ends_the_run_refused(
    aws, moto_server, tmp_path
):
    svc = seed(aws)
    aws.ecs.tag_resource(
        resourceArn=svc["serviceArn"], tags=[{"key": "environment", "value": "PROD"}]
    )
    before = ecs_state(aws)
    action = SetTaskResources(target="orders", cluster="staging", service="orders-api", memory=1024)
    ctx, executor, events = run_loop(
        ecs_map(tmp_path, moto_server.endpoint_url), tmp_path / "state", action, None
    )
    assert ctx.status == "refused" and EXIT[ctx.status] == 5
    assert "environment=PROD" in ctx.status_reason
    (entry,) = ctx.history  # one iteration: the refusal is not retried
    assert entry.phase == "refused" and "environment=PROD" in entry.result
    assert executor.calls == 1
    assert ecs_state(aws) == before  # nothing registered, nothing deployed
    assert any(e.kind == "escalate" and e.data.get("gate") == "production" for e in events)
    saved = ContextStore(tmp_path / "state").load(ctx.run_id)
    assert saved.status == "refused"


def test_an_approved_migration_is_refused_when_the_map_became_production(tmp_path, pg_dsn):
    path = tmp_path / "cart.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "service": "cart",
                "environment": "${DEPLOY_ENV}",
                "downstream": [
                    {"name": "postgresql", "type": "db", "skill": "postgres", "dsn": "${PG}"}
                ],
            }
        ),
        encoding="utf-8",
    )
    migration = RunMigration(target="postgresql", name="m", sql="CREATE TABLE gate_t (a int)")
    state = tmp_path / "state"
    staging = rootloop.load_map(path, env={"DEPLOY_ENV": "staging", "PG": pg_dsn})
    ctx, _, _ = run_loop(staging, state, migration, None)
    assert ctx.status == "paused" and ctx.pending_gate and ctx.pending_gate.gate == "schema"
    # a human approves; meanwhile ${DEPLOY_ENV} now says production
    ctx.approvals.append(approval_key("schema", migration))
    ctx.status = "running"
    production = rootloop.load_map(path, env={"DEPLOY_ENV": "production", "PG": pg_dsn})
    ctx, _, _ = run_loop(production, state, migration, ctx)
    assert ctx.status == "refused" and "production" in ctx.status_reason
    assert ctx.history[-1].phase == "refused"
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT to_regclass('gate_t')").fetchone() == (None,)


def test_a_target_mismatch_ends_the_run_refused_without_acting(tmp_path, closed_port):
    path = tmp_path / "cart.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "service": "cart",
                "environment": "staging",
                "downstream": [
                    {
                        "name": "redis",
                        "type": "cache",
                        "skill": "redis",
                        "url": f"redis://127.0.0.1:{closed_port}/0",
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    action = SetRedisPolicy(target="cart", policy="allkeys-lru")  # the service has no redis
    ctx, executor, _ = run_loop(rootloop.load_map(path, env={}), tmp_path / "s", action, None)
    assert ctx.status == "refused" and "gate 'target'" in ctx.status_reason
    assert executor.calls == 0 and ctx.history[-1].phase == "refused"
