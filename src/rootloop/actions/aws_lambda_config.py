"""Lambda configuration actions: back to a published version's configuration, a longer
timeout, a reserved concurrency.

Same gates as every Lambda executor (``rootloop.actions.aws_lambda``): the map's lower
environment, the AWS account, and the real function's name and tags right before the
change. Each returns what it changed and how to undo it.

Exactly once: each sets a state rather than adds a change. The state before is
journaled right before the change, so a resumed run reports what it changed, never
"B -> B". A reverted configuration is published as a version whose description
carries the action's key: the function's history then says when the configuration
changed back, and which run did it. Environment values are never journaled or shown
(they may be secrets): only the version a configuration came from, and variable names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rootloop.actions.aws_lambda import refuse_production
from rootloop.actions.gates import refuse_foreign_account, refuse_unless_lower
from rootloop.actions.types import (
    ActionResult,
    BaseAction,
    RevertFunctionConfig,
    SetFunctionConcurrency,
    SetFunctionTimeout,
)
from rootloop.errors import UserError
from rootloop.platforms.aws.errors import AWS_ERRORS, translate
from rootloop.platforms.aws.session import AwsClients
from rootloop.skills.lambda_history import COMPARED, describe_changes
from rootloop.topology import Topology

if TYPE_CHECKING:
    from rootloop.actions.dispatch import Dispatcher, Step

ACTIONS = (RevertFunctionConfig, SetFunctionTimeout, SetFunctionConcurrency)
#: how long an update may stay InProgress before the action says so (Lambda applies
#: configuration updates asynchronously; they take seconds)
UPDATE_WAIT_S = 60.0


async def execute(d: Dispatcher, action: Any, step: Step) -> ActionResult:
    clients = d.aws_clients(d.landing_node(action, step.ctx))
    return await asyncio.to_thread(apply, action, clients, d.topology, step)


async def applied(d: Dispatcher, action: Any, step: Step) -> bool:
    return await d.aws_already_applied(action, step, already_applied)


def apply(
    action: BaseAction, clients: AwsClients, topology: Topology, step: Step | None = None
) -> ActionResult:
    """Run one action after the gates; AWS failures raise AwsError."""
    from rootloop.actions.dispatch import Step

    handler = _HANDLERS.get(type(action))
    if handler is None:
        raise UserError(f"'{action.kind}' is not a Lambda configuration action")
    step = step or Step.detached(action.kind)
    name = str(getattr(action, "function_name", ""))
    try:
        refuse_unless_lower(topology, action)
        refuse_foreign_account(topology, action, clients.client("sts"))
        fn = clients.lambda_.get_function_configuration(FunctionName=name)
        refuse_production(clients, topology, action, fn)
        return handler(action, clients, fn, step)
    except AWS_ERRORS as exc:
        raise translate(exc) from exc


def already_applied(action: BaseAction, clients: AwsClients, step: Step) -> bool:
    """The function has the requested state, and this run changed it."""
    lam = clients.lambda_
    try:
        if isinstance(action, RevertFunctionConfig):
            now = lam.get_function_configuration(FunctionName=action.function_name)
            target = lam.get_function_configuration(
                FunctionName=action.function_name, Qualifier=action.version
            )
            return "reverted_from" in step.journal and _same(now, target)
        if isinstance(action, SetFunctionTimeout):
            now = lam.get_function_configuration(FunctionName=action.function_name)
            return "previous_timeout" in step.journal and now.get("Timeout") == action.timeout
        if isinstance(action, SetFunctionConcurrency):
            return "previous_reserved" in step.journal and _reserved(
                clients, action.function_name
            ) == (None if action.reserved < 0 else action.reserved)
    except AWS_ERRORS as exc:
        raise translate(exc) from exc
    return False


# -- executors ------------------------------------------------------------------------------


def _env(cfg: dict[str, Any]) -> dict[str, str]:
    return dict((cfg.get("Environment") or {}).get("Variables") or {})


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in COMPARED) and _env(a) == _env(b)


def _wait_updated(clients: AwsClients, name: str) -> str:
    """Until Lambda has applied the update; its LastUpdateStatus."""
    deadline = time.monotonic() + UPDATE_WAIT_S
    while True:
        status = str(
            clients.lambda_.get_function_configuration(FunctionName=name).get(
                "LastUpdateStatus", "Successful"
            )
        )
        if status != "InProgress" or time.monotonic() > deadline:
            return status
        time.sleep(1.0)


def _no_op(fn: dict[str, Any], what: str) -> ActionResult:
    return ActionResult(
        ok=True,
        changed=f"{fn['FunctionName']}: {what} already; nothing changed",
        no_op=True,
        details={"function": fn["FunctionName"]},
    )


def _revert(
    a: RevertFunctionConfig, clients: AwsClients, fn: dict[str, Any], step: Step
) -> ActionResult:
    lam = clients.lambda_
    target = lam.get_function_configuration(FunctionName=a.function_name, Qualifier=a.version)
    resumed = "reverted_from" in step.journal
    if not resumed and _same(fn, target):
        return _no_op(fn, f"the configuration is version {a.version}'s")
    changes = step.journal.get("changes") or describe_changes(fn, target)
    if not _same(fn, target):
        step.before(
            "update",
            f"restoring {a.function_name}'s configuration of version {a.version}",
            reverted_from=_version_of(clients, fn),
            changes=changes,
        )
        lam.update_function_configuration(
            FunctionName=a.function_name,
            Handler=target["Handler"],
            Runtime=target["Runtime"],
            Timeout=int(target["Timeout"]),
            MemorySize=int(target["MemorySize"]),
            Environment={"Variables": _env(target)},
        )
        _wait_updated(clients, a.function_name)
        step.inside("updated")
        lam.publish_version(FunctionName=a.function_name, Description=f"rootloop:action={step.key}")
    before = step.journal.get("reverted_from")
    return ActionResult(
        ok=True,
        changed=f"{a.function_name}: configuration of version {a.version} restored "
        f"({'; '.join(changes) or 'no difference'})",
        undo=f"restore the configuration of version {before}"
        if before
        else "re-apply the changes listed (the configuration before was never published)",
        details={"function": a.function_name, "version": a.version, "changes": changes},
    )


def _version_of(clients: AwsClients, fn: dict[str, Any]) -> str | None:
    """The newest published version whose configuration is ``fn``'s (None: unpublished)."""
    page = clients.lambda_.list_versions_by_function(FunctionName=fn["FunctionName"])
    versions = [v for v in page.get("Versions", []) if str(v.get("Version", "")).isdigit()]
    for v in sorted(versions, key=lambda v: -int(v["Version"])):
        if _same(v, fn):
            return str(v["Version"])
    return None


def _timeout(
    a: SetFunctionTimeout, clients: AwsClients, fn: dict[str, Any], step: Step
) -> ActionResult:
    previous = step.journal.get("previous_timeout", fn.get("Timeout"))
    if previous == a.timeout and "previous_timeout" not in step.journal:
        return _no_op(fn, f"the timeout is {a.timeout} s")
    if fn.get("Timeout") != a.timeout:
        step.before("update", f"setting {a.function_name}'s timeout", previous_timeout=previous)
        clients.lambda_.update_function_configuration(
            FunctionName=a.function_name, Timeout=a.timeout
        )
        _wait_updated(clients, a.function_name)
    return ActionResult(
        ok=True,
        changed=f"{a.function_name}: timeout {previous} s -> {a.timeout} s",
        undo=f"set {a.function_name}'s timeout to {previous} s again",
        details={"function": a.function_name, "previous_timeout": previous},
    )


def _reserved(clients: AwsClients, name: str) -> int | None:
    got = clients.lambda_.get_function_concurrency(FunctionName=name)
    value = got.get("ReservedConcurrentExecutions")
    return int(value) if value is not None else None


def _shown(v: int | None) -> str:
    return "none" if v is None else str(v)


def _concurrency(
    a: SetFunctionConcurrency, clients: AwsClients, fn: dict[str, Any], step: Step
) -> ActionResult:
    want = None if a.reserved < 0 else a.reserved
    now = _reserved(clients, a.function_name)
    previous = step.journal.get("previous_reserved", now)
    if previous == want and "previous_reserved" not in step.journal:
        return _no_op(fn, f"reserved concurrency is {_shown(want)}")
    if now != want:
        step.before(
            "update", f"setting {a.function_name}'s reserved concurrency", previous_reserved=now
        )
        if want is None:
            clients.lambda_.delete_function_concurrency(FunctionName=a.function_name)
        else:
            clients.lambda_.put_function_concurrency(
                FunctionName=a.function_name, ReservedConcurrentExecutions=want
            )
    undo = (
        f"aws lambda delete-function-concurrency --function-name {a.function_name}"
        if previous is None
        else f"aws lambda put-function-concurrency --function-name {a.function_name} "
        f"--reserved-concurrent-executions {previous}"
    )
    return ActionResult(
        ok=True,
        changed=f"{a.function_name}: reserved concurrency {_shown(previous)} -> {_shown(want)}",
        undo=undo,
        details={"function": a.function_name, "previous_reserved": previous},
    )


_HANDLERS: dict[type, Callable[..., ActionResult]] = {
    RevertFunctionConfig: _revert,
    SetFunctionTimeout: _timeout,
    SetFunctionConcurrency: _concurrency,
}
