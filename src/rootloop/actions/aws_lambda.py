"""Lambda infra actions: one environment variable of a function, its event-source mappings.

Each executor first checks the production gate against the real function (its
name and its tags, read with ListTags) and refuses with
``ActionRefused(gate="production")`` before any change. Each returns what it
changed and how to undo it (the previous value, the previous mapping states).

Exactly once: both actions set a state rather than add a change, so repeating one
is harmless to the world — but not to the record. The state before is journaled
right before the change, so a run resumed after the change still reports what it
changed (``A -> B``), never "B -> B, nothing changed".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rootloop.actions.gates import refuse_foreign_account, refuse_live, refuse_unless_lower
from rootloop.errors import UserError
from rootloop.models.actions import (
    ActionResult,
    BaseAction,
    SetEventSourceMapping,
    SetFunctionEnv,
)
from rootloop.platforms.aws.errors import AWS_ERRORS, translate
from rootloop.platforms.aws.session import AwsClients
from rootloop.redact import MASK, SENSITIVE_NAME
from rootloop.topology import Topology

if TYPE_CHECKING:
    from rootloop.actions.dispatch import Step

LambdaAction = SetFunctionEnv | SetEventSourceMapping


def apply(
    action: BaseAction, clients: AwsClients, topology: Topology, step: Step | None = None
) -> ActionResult:
    """Run one Lambda action after the production gate; AWS failures raise AwsError."""
    from rootloop.actions.dispatch import Step

    if not isinstance(action, SetFunctionEnv | SetEventSourceMapping):
        raise UserError(f"'{action.kind}' is not a Lambda action")
    step = step or Step.detached(action.kind)
    try:
        refuse_unless_lower(topology, action)
        refuse_foreign_account(topology, action, clients.client("sts"))
        fn = clients.lambda_.get_function_configuration(FunctionName=action.function_name)
        refuse_production(clients, topology, action, fn)
        if isinstance(action, SetFunctionEnv):
            return _set_env(action, clients, fn, step)
        return _set_mapping(action, clients, fn, step)
    except AWS_ERRORS as exc:
        raise translate(exc) from exc


def already_applied(action: BaseAction, clients: AwsClients, step: Step) -> bool:
    """The function already has the requested state, and this run changed it."""
    try:
        if isinstance(action, SetFunctionEnv):
            fn = clients.lambda_.get_function_configuration(FunctionName=action.function_name)
            now = fn.get("Environment", {}).get("Variables", {}).get(action.name)
            return "previous_value" in step.journal and now == action.value
        if isinstance(action, SetEventSourceMapping):
            maps = clients.lambda_.list_event_source_mappings(
                FunctionName=action.function_name
            ).get("EventSourceMappings", [])
            chosen = [m for m in maps if action.uuid in (None, m["UUID"])]
            want = "Enabled" if action.enabled else "Disabled"
            return "previous_states" in step.journal and all(
                m.get("State", "").startswith(want[:-1]) for m in chosen
            )
    except AWS_ERRORS as exc:
        raise translate(exc) from exc
    return False


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


def _set_env(
    a: SetFunctionEnv, clients: AwsClients, fn: dict[str, Any], step: Step
) -> ActionResult:
    env = dict(fn.get("Environment", {}).get("Variables", {}))
    resumed = "previous_value" in step.journal
    previous = step.journal["previous_value"] if resumed else env.get(a.name)
    if not resumed and previous == a.value:
        return ActionResult(
            ok=True,
            changed=f"{fn['FunctionName']}: {a.name} is {_shown(a.name, a.value)} already; "
            "nothing changed",
            no_op=True,
            details={"function": fn["FunctionName"], "variable": a.name},
        )
    if env.get(a.name) != a.value:
        if a.value is None:
            env.pop(a.name, None)
        else:
            env[a.name] = a.value
        step.before("update", f"setting {a.name} on {fn['FunctionName']}", previous_value=previous)
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


def _set_mapping(
    a: SetEventSourceMapping, clients: AwsClients, fn: dict[str, Any], step: Step
) -> ActionResult:
    maps = clients.lambda_.list_event_source_mappings(FunctionName=fn["FunctionName"]).get(
        "EventSourceMappings", []
    )
    if a.uuid is not None:
        maps = [m for m in maps if m["UUID"] == a.uuid]
        if not maps:
            raise UserError(f"no event-source mapping {a.uuid} on {fn['FunctionName']}")
    if not maps:
        raise UserError(f"{fn['FunctionName']} has no event-source mapping")
    state = "Enabled" if a.enabled else "Disabled"
    now = {m["UUID"]: m.get("State", "") for m in maps}
    before: dict[str, str] = step.journal.get("previous_states") or now
    todo = [u for u, s in now.items() if not s.startswith(state[:-1])]
    if not todo and "previous_states" not in step.journal:
        return ActionResult(
            ok=True,
            changed=f"{fn['FunctionName']}: event-source mapping(s) {state} already; "
            "nothing changed",
            no_op=True,
            details={"function": fn["FunctionName"], "previous_states": before},
        )
    if todo:
        step.before(
            "update", f"{state.lower()[:-1]}ing {len(todo)} mapping(s)", previous_states=before
        )
    for uuid in todo:
        clients.lambda_.update_event_source_mapping(UUID=uuid, Enabled=a.enabled)
    return ActionResult(
        ok=True,
        changed=f"{fn['FunctionName']}: {len(maps)} event-source mapping(s) -> {state}",
        undo="; ".join(f"set mapping {u} back to {s}" for u, s in before.items()),
        details={"function": fn["FunctionName"], "previous_states": before},
    )
