"""ECS placement actions: how a service's tasks are spread over hosts, and on which
capacity providers they run.

Same gates as every ECS executor (``rootloop.actions.ecs``): the map's lower
environment, the AWS account, and the real service, cluster and task definition by
name and tags right before the change. Each forces a new deployment, so the tasks are
placed again under the new strategy, then waits for the service to be stable.

Exactly once: each sets the service's strategy to a value rather than adding to it;
the strategy before is journaled right before the change, so a resumed run reports
what it changed and does not deploy a second time once the service has the strategy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rootloop.actions import ecs
from rootloop.actions.gates import refuse_foreign_account, refuse_unless_lower
from rootloop.actions.types import (
    ActionResult,
    BaseAction,
    SetCapacityProviderStrategy,
    SetPlacementStrategy,
)
from rootloop.errors import UserError
from rootloop.models import utcnow
from rootloop.platforms.aws.errors import AWS_ERRORS, translate
from rootloop.platforms.aws.session import AwsClients
from rootloop.topology import Topology

if TYPE_CHECKING:
    from rootloop.actions.dispatch import Dispatcher, Step

ACTIONS = (SetPlacementStrategy, SetCapacityProviderStrategy)


async def execute(d: Dispatcher, action: Any, step: Step) -> ActionResult:
    clients = d.aws_clients(d.landing_node(action, step.ctx))
    step.journal.setdefault("started_at", utcnow().isoformat())
    result = await asyncio.to_thread(apply, action, clients, d.topology, step)
    if result.no_op:
        return result
    step.progress(f"{result.changed}; waiting for {action.service} to be stable")
    since = datetime.fromisoformat(step.journal["started_at"])
    stable = await d.wait_stable(clients, action.cluster, action.service, step.progress, since)
    details = {**result.details, "stable": stable.stable, "stable_reason": stable.reason}
    return result.model_copy(update={"details": details})


async def applied(d: Dispatcher, action: Any, step: Step) -> bool:
    return await d.aws_already_applied(action, step, already_applied)


def apply(
    action: BaseAction, clients: AwsClients, topology: Topology, step: Step | None = None
) -> ActionResult:
    """Run one placement action after the gates; AWS failures raise AwsError."""
    from rootloop.actions.dispatch import Step

    handler = _HANDLERS.get(type(action))
    if handler is None:
        raise UserError(f"'{action.kind}' is not an ECS placement action")
    step = step or Step.detached(action.kind)
    cluster, service = str(getattr(action, "cluster", "")), str(getattr(action, "service", ""))
    try:
        refuse_unless_lower(topology, action)
        refuse_foreign_account(topology, action, clients.client("sts"))
        svc = ecs._service(clients, cluster, service)
        ecs.refuse_production(clients, topology, action, svc)
        return handler(action, clients, svc, step)
    except AWS_ERRORS as exc:
        raise translate(exc) from exc


def already_applied(action: BaseAction, clients: AwsClients, step: Step) -> bool:
    try:
        cluster, service = str(getattr(action, "cluster", "")), str(getattr(action, "service", ""))
        svc = ecs._service(clients, cluster, service)
        if isinstance(action, SetPlacementStrategy):
            return "previous_placement" in step.journal and _same(
                svc.get("placementStrategy"), _placement(action)
            )
        if isinstance(action, SetCapacityProviderStrategy):
            return "previous_strategy" in step.journal and _same(
                svc.get("capacityProviderStrategy"),
                _with_base(action, step.journal["previous_strategy"]),
            )
    except AWS_ERRORS as exc:
        raise translate(exc) from exc
    return False


def _same(a: Any, b: list[dict[str, Any]]) -> bool:
    def norm(x: Any) -> list[tuple[tuple[str, Any], ...]]:
        return [tuple(sorted((k, v) for k, v in d.items() if v not in (None, 0, ""))) for d in x]

    return norm(list(a or [])) == norm(b)


def _placement(a: SetPlacementStrategy) -> list[dict[str, Any]]:
    return [{"type": s.type, **({"field": s.field} if s.field else {})} for s in a.strategy]


def _set_placement(
    a: SetPlacementStrategy, clients: AwsClients, svc: dict[str, Any], step: Step
) -> ActionResult:
    want = _placement(a)
    before = step.journal.get("previous_placement", list(svc.get("placementStrategy") or []))
    if _same(before, want) and "previous_placement" not in step.journal:
        return ecs._no_op(svc, f"placement is {_text(want)}")
    if not _same(svc.get("placementStrategy"), want):
        step.before("update", f"placing {a.service} by {_text(want)}", previous_placement=before)
        clients.ecs.update_service(
            cluster=svc["clusterArn"],
            service=svc["serviceName"],
            placementStrategy=want,
            forceNewDeployment=True,
        )
    return ActionResult(
        ok=True,
        changed=f"{a.service}: placement {_text(before) or 'none'} -> {_text(want)}, redeployed",
        undo=f"set {a.service}'s placement strategy back to {_text(before) or 'none'}",
        details={"previous_placement": before, "placement": want},
    )


def _with_base(
    a: SetCapacityProviderStrategy, before: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The base on ``base_provider`` (weight 0 when others carry weight: only the base
    goes there), every other provider as it was, without a base."""
    others = [
        {"capacityProvider": s["capacityProvider"], "weight": int(s.get("weight", 0) or 0)}
        for s in before
        if s.get("capacityProvider") != a.base_provider
    ]
    weighted = any(o["weight"] > 0 for o in others)
    return [
        {"capacityProvider": a.base_provider, "base": a.base, "weight": 0 if weighted else 1},
        *others,
    ]


def _set_strategy(
    a: SetCapacityProviderStrategy, clients: AwsClients, svc: dict[str, Any], step: Step
) -> ActionResult:
    before = step.journal.get("previous_strategy", list(svc.get("capacityProviderStrategy") or []))
    want = _with_base(a, before)
    if _same(before, want) and "previous_strategy" not in step.journal:
        return ecs._no_op(svc, f"capacity providers are {_text(want)}")
    if not _same(svc.get("capacityProviderStrategy"), want):
        step.before(
            "update", f"{a.service}: capacity providers {_text(want)}", previous_strategy=before
        )
        clients.ecs.update_service(
            cluster=svc["clusterArn"],
            service=svc["serviceName"],
            capacityProviderStrategy=want,
            forceNewDeployment=True,
        )
    return ActionResult(
        ok=True,
        changed=f"{a.service}: capacity providers {_text(before) or 'none'} -> {_text(want)}, "
        "redeployed",
        undo=f"set {a.service}'s capacity-provider strategy back to {_text(before) or 'none'}",
        details={"previous_strategy": before, "strategy": want},
    )


def _text(items: list[dict[str, Any]]) -> str:
    return ", ".join(
        " ".join(f"{k}={v}" for k, v in sorted(d.items()) if v not in (None, "")) for d in items
    )


_HANDLERS: dict[type, Callable[..., ActionResult]] = {
    SetPlacementStrategy: _set_placement,
    SetCapacityProviderStrategy: _set_strategy,
}
