"""One table from each action kind to its executor: apply, already applied, resources.

Infra actions change the world directly (ECS through boto3, PostgreSQL, Redis,
Lambda) and then wait for the deploy to be stable. Code actions go the seed's
long way: edit in the run's worktree → repository tests → commit → push the
run's branch → watch CI → wait for the lower environment to deploy the commit.
The gates have already been passed when anything here runs.

Exactly once, across any crash: every executor is idempotent under the action's
key (``<run>/<iteration>``). Right before each side effect it calls
``Step.before``, which writes what it is about to do into the entry's journal,
persists the context and checks the lease (the loop's progress callback does
both), and passes a named kill point. A resumed run calls ``apply`` again: the
executor first finds its own side effect in the real world — the task-definition
revision tagged with the key, the commit carrying the key's trailers on the
remote run branch, the ledger row of the migration — and continues from there
(deploy, push, CI, the deploy of the commit) instead of doing it twice.
``already_applied`` asks the same question without acting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rootloop import killpoints
from rootloop.actions import aws_lambda_config as lambda_config
from rootloop.actions import ecs_placement, sqs_redrive
from rootloop.actions.gates import land
from rootloop.actions.settings import text_setting
from rootloop.context import DebugContext, HistoryEntry
from rootloop.errors import ActionRefused, ApprovalRequired, UserError
from rootloop.models import utcnow
from rootloop.models.actions import (
    ActionResult,
    ApplyPatch,
    BaseAction,
    ForceDeployment,
    RedriveDlq,
    RevertCommit,
    RollbackTaskDefinition,
    RunMigration,
    ScaleService,
    SetConnectionLimit,
    SetEnvVar,
    SetEventSourceMapping,
    SetFunctionEnv,
    SetRedisPolicy,
    SetRoleTimeout,
    SetTaskResources,
    TerminateBackend,
)
from rootloop.models.nodes import Node
from rootloop.topology import Topology

Progress = Callable[[str], None]
ECS_ACTIONS = (SetTaskResources, SetEnvVar, RollbackTaskDefinition, ForceDeployment, ScaleService)
LAMBDA_ACTIONS = (SetFunctionEnv, SetEventSourceMapping)


@dataclass
class Step:
    """One action being carried out: its idempotency key, its journal, its checkpoint."""

    ctx: DebugContext
    entry: HistoryEntry
    progress: Progress
    kind: str = ""

    @classmethod
    def detached(cls, kind: str) -> Step:
        """For an executor called outside a run (tests, scripts): a journal of its own."""
        return cls(DebugContext(service="-"), HistoryEntry(iteration=0, diagnosis=""), _quiet, kind)

    @property
    def key(self) -> str:
        return self.ctx.action_key(self.entry)

    @property
    def journal(self) -> dict[str, Any]:
        return self.entry.journal

    def before(self, what: str, message: str = "", **facts: Any) -> None:
        """Right before a side effect: journal ``facts``, persist, check the lease, and
        pass the kill point ``step:<kind>:<what>``. Raises ``LeaseLost`` to stop here."""
        self.entry.journal.update(facts)
        self.progress(message or f"{what} ({self.key})")
        killpoints.hit(f"step:{self.kind}:{what}")

    def inside(self, what: str) -> None:
        """A kill point inside a side effect (a migration's open transaction)."""
        killpoints.hit(f"step:{self.kind}:{what}")


def _quiet(_message: str) -> None:
    return None


Apply = Callable[["Dispatcher", Any, Step], Awaitable[ActionResult]]
Probe = Callable[["Dispatcher", Any, Step], Awaitable[bool]]
#: (what kind of thing, its name) — what a production check reads before the side effect
Resource = tuple[str, str]


@dataclass(frozen=True)
class Executor:
    """How one action kind is carried out."""

    apply: Apply
    already_applied: Probe
    resources: Callable[[Any], list[Resource]]


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

    def probe_node(self, action: BaseAction, ctx: DebugContext) -> Node | None:
        """The landing node for a read-only probe; None where a gate refuses (applying
        the action again meets the same gate, and stops there)."""
        try:
            return self.landing_node(action, ctx)
        except (ActionRefused, ApprovalRequired):
            return None

    async def aws_already_applied(
        self, action: BaseAction, step: Step, check: Callable[[Any, Any, Step], bool]
    ) -> bool:
        """Ask the real world whether an AWS action's effect is there (``check(action,
        clients, step)`` on a thread), through the clients of its landing node; False
        where a gate refuses the node (applying again meets the same gate)."""
        node = self.probe_node(action, step.ctx)
        if node is None:
            return False
        return await asyncio.to_thread(check, action, self.aws_clients(node), step)

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

    # -- Executor protocol (the loop's and the MCP server's one way to act) ----------------
    @staticmethod
    def executor_of(action: BaseAction) -> Executor:
        for types, executor in EXECUTORS:
            if isinstance(action, types):
                return executor
        raise UserError(f"no executor for action '{action.kind}'")

    def resources(self, action: BaseAction) -> list[Resource]:
        """What the action touches, for the production check right before its side effect."""
        return self.executor_of(action).resources(action)

    async def apply(
        self, action: BaseAction, ctx: DebugContext, entry: HistoryEntry, progress: Progress
    ) -> ActionResult:
        step = Step(ctx, entry, progress, action.kind)
        return await self.executor_of(action).apply(self, action, step)

    async def already_applied(
        self, action: BaseAction, ctx: DebugContext, entry: HistoryEntry
    ) -> bool:
        """Did an interrupted run's action take effect? Read from the real world."""
        step = Step(ctx, entry, lambda _m: None, action.kind)
        return await self.executor_of(action).already_applied(self, action, step)

    async def worktree(self, ctx: DebugContext) -> Path | None:
        """The run's worktree of the map's repository (shared with its code fixes), opened;
        None when the map names no local clone."""
        repo = self.topology.repo
        if repo is None or not repo.path:
            return None
        from rootloop.actions.code import CodeFix

        ws = CodeFix.workspace_for(self.topology, ctx, self.state_root)
        await asyncio.to_thread(ws.open)
        return ws.path

    # -- ECS ----------------------------------------------------------------------------------
    async def _ecs(self, action: Any, step: Step) -> ActionResult:
        from rootloop.actions import ecs

        clients = self.aws_clients(self.landing_node(action, step.ctx))
        step.journal.setdefault("started_at", utcnow().isoformat())
        result = await asyncio.to_thread(ecs.apply, action, clients, self.topology, step)
        step.progress(f"{result.changed}; waiting for {action.service} to be stable")
        since = datetime.fromisoformat(step.journal["started_at"])
        stable = await self.wait_stable(
            clients, action.cluster, action.service, step.progress, since=since
        )
        details = {**result.details, "stable": stable.stable, "stable_reason": stable.reason}
        return result.model_copy(update={"details": details})

    async def _ecs_applied(self, action: Any, step: Step) -> bool:
        from rootloop.actions import ecs

        return await self.aws_already_applied(action, step, ecs.already_applied)

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

    # -- Lambda -------------------------------------------------------------------------------
    async def _lambda(self, action: Any, step: Step) -> ActionResult:
        from rootloop.actions import aws_lambda

        clients = self.aws_clients(self.landing_node(action, step.ctx))
        return await asyncio.to_thread(aws_lambda.apply, action, clients, self.topology, step)

    async def _lambda_applied(self, action: Any, step: Step) -> bool:
        from rootloop.actions import aws_lambda

        return await self.aws_already_applied(action, step, aws_lambda.already_applied)

    # -- datastores ---------------------------------------------------------------------------
    def _dsn(self, action: BaseAction, step: Step) -> str:
        return text_setting(self.landing_node(action, step.ctx), "dsn")

    def _redis_url(self, action: BaseAction, step: Step) -> str:
        return text_setting(self.landing_node(action, step.ctx), "url")

    async def _terminate(self, action: TerminateBackend, step: Step) -> ActionResult:
        from rootloop.actions.datastores import apply_terminate_backend

        return await asyncio.to_thread(
            apply_terminate_backend, action, self._dsn(action, step), self.topology, step
        )

    async def _terminated(self, action: TerminateBackend, step: Step) -> bool:
        from rootloop.actions.datastores import terminated_already

        return await asyncio.to_thread(terminated_already, self._dsn(action, step), step)

    async def _redis(self, action: SetRedisPolicy, step: Step) -> ActionResult:
        from rootloop.actions.datastores import apply_set_redis_policy

        return await asyncio.to_thread(
            apply_set_redis_policy, action, self._redis_url(action, step), self.topology, step
        )

    async def _redis_applied(self, action: SetRedisPolicy, step: Step) -> bool:
        from rootloop.actions.datastores import redis_policy_in_force

        return await asyncio.to_thread(redis_policy_in_force, action, self._redis_url(action, step))

    async def _connlimit(self, action: SetConnectionLimit, step: Step) -> ActionResult:
        from rootloop.actions.connection_limits import apply_set_connection_limit

        return await asyncio.to_thread(
            apply_set_connection_limit, action, self._dsn(action, step), self.topology, step
        )

    async def _connlimit_applied(self, action: SetConnectionLimit, step: Step) -> bool:
        from rootloop.actions.connection_limits import limit_in_force

        return await asyncio.to_thread(limit_in_force, action, self._dsn(action, step))

    async def _role_timeout(self, action: SetRoleTimeout, step: Step) -> ActionResult:
        from rootloop.actions.role_settings import apply_set_role_timeout

        return await asyncio.to_thread(
            apply_set_role_timeout, action, self._dsn(action, step), self.topology, step
        )

    async def _role_timeout_applied(self, action: SetRoleTimeout, step: Step) -> bool:
        from rootloop.actions.role_settings import in_force

        return await asyncio.to_thread(in_force, action, self._dsn(action, step))

    async def _migrate(self, action: RunMigration, step: Step) -> ActionResult:
        from rootloop.actions.datastores import run_migration

        return await asyncio.to_thread(
            run_migration, action, self._dsn(action, step), self.topology, step
        )

    async def _migrated(self, action: RunMigration, step: Step) -> bool:
        from rootloop.actions.datastores import migration_recorded

        return await asyncio.to_thread(migration_recorded, self._dsn(action, step), step.key)

    # -- code -----------------------------------------------------------------------------------
    async def _code(self, action: ApplyPatch | RevertCommit, step: Step) -> ActionResult:
        from rootloop.actions.code import CodeFix

        land(self.topology, action, step.ctx)
        return await CodeFix(self, step.ctx, step.entry, step.progress, step).apply(action)

    async def _code_applied(self, action: ApplyPatch | RevertCommit, step: Step) -> bool:
        from rootloop.actions.code import CodeFix

        return await CodeFix(self, step.ctx, step.entry, step.progress, step).landed()


def _ecs_resources(a: Any) -> list[Resource]:
    return [("ECS service", f"{a.cluster}/{a.service}"), ("ECS cluster", a.cluster)]


def _lambda_resources(a: Any) -> list[Resource]:
    return [("Lambda function", a.function_name)]


def _node_resource(kind: str) -> Callable[[Any], list[Resource]]:
    return lambda a: [(kind, a.target)]


def _code_resources(a: Any) -> list[Resource]:
    return [("git branch", "the run's rootloop/ branch"), ("service", a.target)]


#: action types → how they are carried out (the only place that says so)
EXECUTORS: list[tuple[tuple[type[BaseAction], ...], Executor]] = [
    (ECS_ACTIONS, Executor(Dispatcher._ecs, Dispatcher._ecs_applied, _ecs_resources)),
    (
        LAMBDA_ACTIONS,
        Executor(Dispatcher._lambda, Dispatcher._lambda_applied, _lambda_resources),
    ),
    (
        ecs_placement.ACTIONS,
        Executor(ecs_placement.execute, ecs_placement.applied, _ecs_resources),
    ),
    (
        lambda_config.ACTIONS,
        Executor(lambda_config.execute, lambda_config.applied, _lambda_resources),
    ),
    (
        (TerminateBackend,),
        Executor(Dispatcher._terminate, Dispatcher._terminated, _node_resource("PostgreSQL")),
    ),
    (
        (SetRedisPolicy,),
        Executor(Dispatcher._redis, Dispatcher._redis_applied, _node_resource("Redis")),
    ),
    (
        (SetConnectionLimit,),
        Executor(
            Dispatcher._connlimit, Dispatcher._connlimit_applied, _node_resource("PostgreSQL")
        ),
    ),
    (
        (SetRoleTimeout,),
        Executor(
            Dispatcher._role_timeout,
            Dispatcher._role_timeout_applied,
            _node_resource("PostgreSQL"),
        ),
    ),
    (
        (RunMigration,),
        Executor(Dispatcher._migrate, Dispatcher._migrated, _node_resource("PostgreSQL")),
    ),
    ((RedriveDlq,), Executor(sqs_redrive.run, sqs_redrive.applied, sqs_redrive.resources)),
    (
        (ApplyPatch, RevertCommit),
        Executor(Dispatcher._code, Dispatcher._code_applied, _code_resources),
    ),
]
