"""Lambda infra actions: one environment variable of a function, its event-source mappings.

Each executor first checks the production gate against the real function (its
name and its tags, read with ListTags) and refuses with
``ActionRefused(gate="production")`` before any change. Each returns what it
changed and how to undo it (the previous value, the previous mapping states).
"""

from __future__ import annotations

from typing import Any

from rootloop.actions.gates import refuse_foreign_account, refuse_live, refuse_unless_lower
from rootloop.actions.types import (
    ActionResult,
    BaseAction,
    SetEventSourceMapping,
    SetFunctionEnv,
)
from rootloop.errors import UserError
from rootloop.platforms.aws.errors import AWS_ERRORS, translate
from rootloop.platforms.aws.session import AwsClients
from rootloop.redact import MASK, SENSITIVE_NAME
from rootloop.topology import Topology

LambdaAction = SetFunctionEnv | SetEventSourceMapping


def apply(action: BaseAction, clients: AwsClients, topology: Topology) -> ActionResult:
    """Run one Lambda action after the production gate; AWS failures raise AwsError."""
    if not isinstance(action, SetFunctionEnv | SetEventSourceMapping):
        raise UserError(f"'{action.kind}' is not a Lambda action")
    try:
        refuse_unless_lower(topology, action)
        refuse_foreign_account(topology, action, clients.client("sts"))
        fn = clients.lambda_.get_function_configuration(FunctionName=action.function_name)
        refuse_production(clients, topology, action, fn)
        if isinstance(action, SetFunctionEnv):
            return _set_env(action, clients, fn)
        return _set_mapping(action, clients, fn)
    except AWS_ERRORS as exc:
        raise translate(exc) from exc


def refuse_production(
    clients: AwsClients, topology: Topology, action: BaseAction, fn: dict[str, Any]
) -> None:
    """Refuse when the node or the function is production."""
    tags = clients.lambda_.list_tags(Resource=fn["FunctionArn"]).get("Tags", {})
    refuse_live(topology, action, [("Lambda function", fn["FunctionName"], tags)])


def _shown(name: str, value: str | None) -> str:
    if value is None:
        return "unset"
    return MASK if SENSITIVE_NAME.search(name) else value


def _set_env(a: SetFunctionEnv, clients: AwsClients, fn: dict[str, Any]) -> ActionResult:
    env = dict(fn.get("Environment", {}).get("Variables", {}))
    previous = env.get(a.name)
    if a.value is None:
        env.pop(a.name, None)
    else:
        env[a.name] = a.value
    clients.lambda_.update_function_configuration(
        FunctionName=fn["FunctionName"], Environment={"Variables": env}
    )
    if previous is None:
        undo = f"remove {a.name} from the function's environment"
    else:
        undo = f"set {a.name}={_shown(a.name, previous)} on {fn['FunctionName']} again"
    return ActionResult(
        ok=True,
        changed=f"{fn['FunctionName']}: {a.name} {_shown(a.name, previous)} -> "
        f"{_shown(a.name, a.value)}",
        undo=undo,
        details={
            "function": fn["FunctionName"],
            "variable": a.name,
            "previous_set": previous is not None,
        },
    )


def _set_mapping(a: SetEventSourceMapping, clients: AwsClients, fn: dict[str, Any]) -> ActionResult:
    maps = clients.lambda_.list_event_source_mappings(FunctionName=fn["FunctionName"]).get(
        "EventSourceMappings", []
    )
    if a.uuid is not None:
        maps = [m for m in maps if m["UUID"] == a.uuid]
        if not maps:
            raise UserError(f"no event-source mapping {a.uuid} on {fn['FunctionName']}")
    if not maps:
        raise UserError(f"{fn['FunctionName']} has no event-source mapping")
    before = {m["UUID"]: m.get("State", "") for m in maps}
    for m in maps:
        clients.lambda_.update_event_source_mapping(UUID=m["UUID"], Enabled=a.enabled)
    state = "Enabled" if a.enabled else "Disabled"
    return ActionResult(
        ok=True,
        changed=f"{fn['FunctionName']}: {len(maps)} event-source mapping(s) -> {state}",
        undo="; ".join(f"set mapping {u} back to {s}" for u, s in before.items()),
        details={"function": fn["FunctionName"], "previous_states": before},
    )
