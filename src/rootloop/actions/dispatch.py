"""Routes an allowed action to the executor of its platform, and waits for it to land.

Infra actions change the world directly (ECS through boto3, PostgreSQL, Redis,
Lambda) and then wait for the deploy to be stable. Code actions go the seed's
long way: edit in the run's worktree → repository tests → commit → push the
run's branch → watch CI → wait for the lower environment to deploy the commit.
The gates have already been passed when anything here runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rootloop.actions.gates import land, refuse_unless_lower
from rootloop.actions.types import (
    ActionResult,
    ApplyPatch,
    BaseAction,
    ForceDeployment,
    RevertCommit,
    RollbackTaskDefinition,
    RunMigration,
    ScaleService,
    SetEnvVar,
    SetEventSourceMapping,
    SetFunctionEnv,
    SetRedisPolicy,
    SetTaskResources,
    TerminateBackend,
)
from rootloop.context import DebugContext, HistoryEntry
from rootloop.errors import ActionRefused, ApprovalRequired, PlatformError, UserError
from rootloop.models import utcnow
from rootloop.skills.base import Node
from rootloop.topology import Topology

Progress = Callable[[str], None]
ECS_ACTIONS = (SetTaskResources, SetEnvVar, RollbackTaskDefinition, ForceDeployment, ScaleService)
LAMBDA_ACTIONS = (SetFunctionEnv, SetEventSourceMapping)


class Dispatcher:
    def __init__(self, topology: Topology, state_root: Path) -> None:
        self.topology = topology
        self.state_root = state_root

    # -- the node an action acts on: its target's own check, nothing else ---------------------
    def landing_node(self, action: BaseAction, ctx: DebugContext) -> Node:
        """Ask the policy gates again (the map as loaded now, the run's approvals) and
        return the target's own check for this action; refuses rather than look elsewhere."""
        node = land(self.topology, action, ctx)
        if node is None:
            raise UserError(f"'{action.kind}' has no resource node to act on")
        return node

    def aws_clients(self, node: Node) -> Any:
        from rootloop.platforms.aws.session import AwsConfig, clients_for

        cfg = AwsConfig(
            **{
                k: getattr(node.settings, k)
                for k in AwsConfig.model_fields
                if hasattr(node.settings, k)
            }
        )
        return clients_for(cfg)

    # -- Executor protocol -----------------------------------------------------------------
    async def apply(
        self, action: BaseAction, ctx: DebugContext, entry: HistoryEntry, progress: Progress
    ) -> ActionResult:
        if isinstance(action, ApplyPatch | RevertCommit):
            from rootloop.actions.code import CodeFix

            land(self.topology, action, ctx)
            return await CodeFix(self, ctx, entry, progress).apply(action)
        node = self.landing_node(action, ctx)
        if isinstance(action, ECS_ACTIONS):
            return await self._ecs(action, node, progress)
        if isinstance(action, LAMBDA_ACTIONS):
            from rootloop.actions import aws_lambda

            return await asyncio.to_thread(
                aws_lambda.apply, action, self.aws_clients(node), self.topology
            )
        if isinstance(action, TerminateBackend):
            from rootloop.actions.datastores import apply_terminate_backend

            return await asyncio.to_thread(
                apply_terminate_backend,
                action,
                node.settings.dsn,  # type: ignore[attr-defined]
                self.topology,
            )
        if isinstance(action, SetRedisPolicy):
            from rootloop.actions.datastores import apply_set_redis_policy

            return await asyncio.to_thread(
                apply_set_redis_policy,
                action,
                node.settings.url,  # type: ignore[attr-defined]
                self.topology,
            )
        if isinstance(action, RunMigration):
            return await asyncio.to_thread(
                run_migration,
                action,
                node.settings.dsn,  # type: ignore[attr-defined]
                self.topology,
            )
        raise UserError(f"no executor for action '{action.kind}'")

    async def already_applied(
        self, action: BaseAction, ctx: DebugContext, entry: HistoryEntry
    ) -> bool:
        """Probe whether an action whose run was killed mid-way took effect."""
        if isinstance(action, ApplyPatch | RevertCommit):
            from rootloop.actions.code import CodeFix

            return await CodeFix(self, ctx, entry, lambda _m: None).committed()
        if isinstance(action, SetTaskResources) and action.memory is not None:
            try:
                node = self.landing_node(action, ctx)
            except (ActionRefused, ApprovalRequired):
                return False  # not probed: applying it again meets the same gate, and stops
            clients = self.aws_clients(node)

            def memory_now() -> int | None:
                svc = clients.ecs.describe_services(
                    cluster=action.cluster, services=[action.service]
                )["services"][0]
                td = clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])[
                    "taskDefinition"
                ]
                return int(td.get("memory") or td["containerDefinitions"][0].get("memory") or 0)

            return await asyncio.to_thread(memory_now) == action.memory
        return False  # the other actions are safe to repeat: they set a state, not a delta

    # -- ECS ----------------------------------------------------------------------------------
    async def _ecs(self, action: Any, node: Node, progress: Progress) -> ActionResult:
        from rootloop.actions import ecs

        clients = self.aws_clients(node)
        started = utcnow()
        result = await asyncio.to_thread(ecs.apply, action, clients, self.topology)
        progress(f"{result.changed}; waiting for {action.service} to be stable")
        stable = await self.wait_stable(
            clients, action.cluster, action.service, progress, since=started
        )
        details = {**result.details, "stable": stable.stable, "stable_reason": stable.reason}
        return result.model_copy(update={"details": details})

    async def wait_stable(
        self,
        clients: Any,
        cluster: str,
        service: str,
        progress: Progress,
        since: datetime | None = None,
    ) -> Any:
        from rootloop.actions import ecs

        return await asyncio.to_thread(
            ecs.wait_stable,
            clients,
            cluster,
            service,
            timeout=self.topology.policy.deploy_timeout,
            poll=2.0,
            on_progress=lambda p: progress(f"deploy: {p}"),
            since=since,
        )


def run_migration(action: RunMigration, dsn: str, topology: Topology) -> ActionResult:
    """Apply an approved migration in one transaction."""
    import psycopg

    from rootloop.actions.datastores import refuse_production_database

    refuse_unless_lower(topology, action)
    start = time.perf_counter()
    try:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=False) as conn:
            refuse_production_database(topology, action, dsn, conn)
            conn.execute(action.sql)  # type: ignore[arg-type]
            conn.commit()
    except psycopg.Error as exc:
        raise PlatformError(f"migration {action.name} failed: {exc}".strip()) from None
    return ActionResult(
        ok=True,
        changed=f"applied migration {action.name} in {time.perf_counter() - start:.2f}s",
        undo="write and approve a reverse migration",
        details={"sql": action.sql},
    )
