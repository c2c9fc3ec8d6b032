"""The gatekeeper: every action passes here before any side effect, and again where it lands.

Gates, in the order they are asked (the first that objects decides):

    target       refuse  the action's resource is not its target node's own (no "a node
                         with that skill" fallback), or the target is not in the map
    production   refuse  the target's environment is not declared lower (default deny:
                         ``policy.act_in``, every map over the node, stricter wins), or the
                         node, a resource name or a tag reads as production
    autonomy     refuse  the policy's level for this environment and action is ``observe``
    schema       pause   the action changes a database schema, until a human approves it
    autonomy     pause   the level is ``propose``: every action waits for a human
    repeat       refuse  this exact action already failed for this diagnosis
    budget       refuse  the iteration budget is spent

The first five are the *policy* gates: ``land`` asks them again right before the side
effect (after an approval, on resume, through MCP alike), with the map as it is then.
What only the live resource can tell — its AWS account, its own tags and name — the
executors check with ``refuse_live`` and ``refuse_foreign_account`` just before they
change it. Merging and pushing to the default branch are not gated here: no code path
does either (the git layer refuses it in one place).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rootloop.analysis.schema import sql_changes_schema
from rootloop.context import DebugContext
from rootloop.errors import ActionRefused, ApprovalRequired
from rootloop.models import PriorContext
from rootloop.models.actions import (
    ApplyPatch,
    BaseAction,
    ForceDeployment,
    RevertCommit,
    RevertFunctionConfig,
    RollbackTaskDefinition,
    RunMigration,
    ScaleService,
    SetCapacityProviderStrategy,
    SetConnectionLimit,
    SetEnvVar,
    SetEventSourceMapping,
    SetFunctionConcurrency,
    SetFunctionEnv,
    SetFunctionTimeout,
    SetPlacementStrategy,
    SetRedisPolicy,
    SetTaskResources,
    TerminateBackend,
)
from rootloop.models.nodes import Node
from rootloop.policy import LEVELS, Level
from rootloop.topology import Topology

Decision = Literal["allow", "approval", "refuse"]

#: attribute names of actions that name a concrete resource
RESOURCE_FIELDS = ("cluster", "service", "function_name", "application_name")
#: the skill a target node must have for an action to act on its resources
SKILL_OF: dict[type[BaseAction], str] = {
    SetTaskResources: "aws-ecs",
    SetEnvVar: "aws-ecs",
    RollbackTaskDefinition: "aws-ecs",
    ForceDeployment: "aws-ecs",
    ScaleService: "aws-ecs",
    SetPlacementStrategy: "aws-ecs",
    SetCapacityProviderStrategy: "aws-ecs",
    SetFunctionEnv: "aws-lambda",
    SetEventSourceMapping: "aws-lambda",
    RevertFunctionConfig: "aws-lambda",
    SetFunctionTimeout: "aws-lambda",
    SetFunctionConcurrency: "aws-lambda",
    TerminateBackend: "postgres",
    RunMigration: "postgres",
    SetConnectionLimit: "postgres",
    SetRedisPolicy: "redis",
}
CODE_ACTIONS = (ApplyPatch, RevertCommit)
AWS_SKILLS = ("aws-ecs", "aws-lambda")


@dataclass(frozen=True)
class GateDecision:
    decision: Decision
    gate: str = ""
    reason: str = ""
    level: str = ""  # the autonomy level that applied: observe / propose / act
    deferred: tuple[str, ...] = field(default=())  # checked again at the moment of acting

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"


ALLOW = GateDecision("allow")


def approval_key(gate: str, action: BaseAction) -> str:
    return f"{gate}:{action.fingerprint()}"


def is_schema_change(action: BaseAction) -> bool:
    if isinstance(action, RunMigration):
        return True
    if isinstance(action, ApplyPatch):
        return action.touches_schema
    return action.schema_change or any(
        sql_changes_schema(str(v)) for v in action.model_dump().values() if isinstance(v, str)
    )


# -- the action's node ------------------------------------------------------------------------


def target_component(topology: Topology, action: BaseAction) -> str:
    """The component the action names (a node name resolves to its component)."""
    node = topology.nodes.get(action.target)
    if node is not None:
        return node.component
    if action.target in topology.graph:
        return action.target
    raise ActionRefused(
        "target",
        f"'{action.target}' is not a node of the map; an action acts only on a node the "
        "map declares",
    )


def _last(value: str) -> str:
    """``arn:...:cluster/name`` and ``name`` compare equal; so do a function ARN and name."""
    value = str(value).strip()
    if value.startswith("arn:") and ":function:" in value:
        return value.split(":function:", 1)[1].split(":", 1)[0]
    return value.rsplit("/", 1)[-1]


def resolve(topology: Topology, action: BaseAction) -> Node | None:
    """The check of the target node whose resource this action changes (None: code).

    Raises ``ActionRefused(gate="target")`` when the target has no such check, or when the
    action names a resource (cluster, service, function) that is not that check's own.
    """
    component = target_component(topology, action)
    if isinstance(action, CODE_ACTIONS):
        if component != topology.service:
            raise ActionRefused(
                "target",
                f"a code change acts on the repository of '{topology.service}', but the action "
                f"names '{component}'",
            )
        return None
    skill = SKILL_OF.get(type(action))
    if skill is None:
        raise ActionRefused("target", f"no rule says which resource '{action.kind}' changes")
    own = [n for n in topology.checks_of(component) if n.skill == skill]
    if not own:
        raise ActionRefused(
            "target",
            f"'{action.kind}' needs a '{skill}' check on '{component}', and the map gives "
            f"'{component}' none; the action is refused rather than run on another node",
        )
    _refuse_foreign_arns(topology, component, action)
    matching = [n for n in own if _owns(n, action)]
    if not matching:
        names = ", ".join(f"{k}={getattr(action, k)}" for k in _resource_keys(action))
        raise ActionRefused(
            "target",
            f"{names} is not a resource of '{component}' (its {skill} check names "
            f"{_described(own[0])})",
        )
    return matching[0]


def _refuse_foreign_arns(topology: Topology, component: str, action: BaseAction) -> None:
    """An ARN in the action names its account: it must be a listed lower one."""
    accounts = topology.aws_accounts_for(component)
    for key in _resource_keys(action):
        value = str(getattr(action, key, ""))
        parts = value.split(":")
        if (
            value.startswith("arn:")
            and len(parts) > 4
            and accounts is not None
            and parts[4] not in accounts
        ):
            raise ActionRefused(
                "production",
                f"{key} {value} is in AWS account {parts[4]}, not one of the lower "
                f"accounts the map lists ({', '.join(accounts) or 'none'})",
            )


def _resource_keys(action: BaseAction) -> list[str]:
    return [k for k in ("cluster", "service", "function_name") if hasattr(action, k)]


#: the settings of a check that name its resource (postgres / redis: the connection itself)
OWN_KEYS: dict[str, tuple[str, ...]] = {
    "aws-ecs": ("cluster", "service"),
    "aws-lambda": ("function_name",),
}


def _owns(node: Node, action: BaseAction) -> bool:
    return all(
        _last(getattr(node.settings, k, "")) == _last(getattr(action, k, ""))
        for k in OWN_KEYS.get(node.skill, ())
    )


def _described(node: Node) -> str:
    keys = OWN_KEYS.get(node.skill, ())
    return " ".join(f"{k}={getattr(node.settings, k, '?')}" for k in keys) or node.name


# -- autonomy ---------------------------------------------------------------------------------


def autonomy_level(topology: Topology, component: str, action: BaseAction) -> tuple[Level, str]:
    """The strictest level any map over ``component`` sets for this action."""
    level: Level = "act"
    why = "the default level is 'act' in a lower environment"
    for scope in topology.scopes_of(component):
        lvl, reason = scope.policy.autonomy.level_for(scope.environment, action.kind, action.family)
        if LEVELS.index(lvl) < LEVELS.index(level):
            owner = "" if scope.service == topology.service else f" (the map of '{scope.service}')"
            level, why = lvl, f"{reason}{owner}"
    return level, why


# -- the gatekeeper ---------------------------------------------------------------------------


class Gatekeeper:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def policy_check(self, action: BaseAction, context: DebugContext) -> GateDecision:
        """The gates that depend on the map and the approvals, not on the run's history."""
        topo = self.topology
        try:
            component: str | None = target_component(topo, action)
        except ActionRefused:
            component = None  # refused below, after the environment has had its say
        env = topo.environment_refusal(component)
        if env:  # first: a production run is refused whatever the action says
            return GateDecision(
                "refuse",
                "production",
                f"{env}: rootloop diagnoses it but production changes are made by a human",
                level="observe",
            )
        why = self._production_reason(action, component)
        if why:
            return GateDecision(
                "refuse", "production", f"{why}: production changes are made by a human", "observe"
            )
        level, level_why = autonomy_level(topo, component or topo.service, action)
        try:
            node = resolve(topo, action)
        except ActionRefused as exc:
            return GateDecision("refuse", exc.gate, exc.reason, level)
        if level == "observe":
            return GateDecision(
                "refuse", "autonomy", f"{level_why}: rootloop only diagnoses here", level
            )
        deferred = self._deferred(node)
        approved = {approval_key(g, action) for g in ("schema", "autonomy")} & set(
            context.approvals
        )
        if is_schema_change(action) and approval_key("schema", action) not in approved:
            return GateDecision(
                "approval",
                "schema",
                f"'{action.describe()}' changes the database schema; "
                f"approve with: rootloop approve {context.run_id} --gate schema",
                level,
                deferred,
            )
        if level == "propose" and not approved:
            return GateDecision(
                "approval",
                "autonomy",
                f"{level_why}: '{action.describe()}' waits for a human; "
                f"approve with: rootloop approve {context.run_id} --gate autonomy",
                level,
                deferred,
            )
        return GateDecision("allow", "", "", level, deferred)

    def _production_reason(self, action: BaseAction, component: str | None) -> str:
        """The target's checks, the target's name, the resources the action names."""
        topo = self.topology
        for check in topo.checks_of(component) if component else []:
            why = topo.node_refusal(check)
            if why:
                return why
        why = topo.resource_refusal(action.target, {}, component)
        if why:
            return why
        for name in RESOURCE_FIELDS:
            value = getattr(action, name, None)
            if isinstance(value, str):
                why = topo.resource_refusal(value, {}, component)
                if why:
                    return f"{name} {why}"
        return ""

    def _deferred(self, node: Node | None) -> tuple[str, ...]:
        if node is None or node.skill not in AWS_SKILLS:
            return ()
        out = ["the real resource's name and tags, read from AWS"]
        accounts = self.topology.aws_accounts_for(node.component)
        if accounts is not None:
            out.append(f"the AWS account (STS) is one of {', '.join(accounts) or 'none'}")
        return tuple(out)

    def check(
        self,
        action: BaseAction,
        context: DebugContext,
        diagnosis_key: str | None = None,
        prior: PriorContext | None = None,
    ) -> GateDecision:
        decision = self.policy_check(action, context)
        if not decision.allowed:
            return decision
        topo = self.topology
        if action.fingerprint() in context.broken_fingerprints():
            return GateDecision(
                "refuse", "repeat", f"'{action.describe()}' already failed to apply in this run"
            )
        failed = context.failed_before(action)
        if failed is not None and (
            diagnosis_key is None
            or failed.diagnosis_detail is None
            or failed.diagnosis_detail.key == diagnosis_key
        ):
            return GateDecision(
                "refuse",
                "repeat",
                f"'{action.describe()}' already failed in iteration "
                f"{failed.iteration}: {failed.result}",
            )
        if prior is not None:
            fp = action.fingerprint()
            for fa in prior.failed_actions:
                if fa.fingerprint == fp and (
                    diagnosis_key is None or fa.diagnosis_key == diagnosis_key
                ):
                    return GateDecision(
                        "refuse",
                        "repeat",
                        f"'{action.describe()}' failed for the same diagnosis in run {fa.run_id}",
                    )
        if context.iteration > topo.policy.max_iterations:
            return GateDecision(
                "refuse", "budget", f"iteration budget of {topo.policy.max_iterations} is spent"
            )
        return decision

    def enforce(
        self,
        action: BaseAction,
        context: DebugContext,
        diagnosis_key: str | None = None,
        prior: PriorContext | None = None,
    ) -> None:
        """Raise the control-flow error for anything but 'allow'."""
        _raise(self.check(action, context, diagnosis_key, prior))


def _raise(d: GateDecision) -> None:
    if d.decision == "approval":
        raise ApprovalRequired(d.gate, d.reason)
    if d.decision == "refuse":
        raise ActionRefused(d.gate, d.reason)


def land(topology: Topology, action: BaseAction, context: DebugContext) -> Node | None:
    """The policy gates once more, right before the side effect; the node to act on.

    The executors' entry point: whatever path led here (the loop after an approval, a
    resumed run, MCP), the map as loaded now decides. Raises ``ActionRefused`` or
    ``ApprovalRequired``; never returns a node the action does not own.
    """
    _raise(Gatekeeper(topology).policy_check(action, context))
    return resolve(topology, action)


def refuse_unless_lower(topology: Topology, action: BaseAction) -> Node | None:
    """The refusing policy gates alone (no approvals needed): each executor's first line.

    Executors cannot see the run's approvals, so a pause is not theirs to decide (``land``
    did that); whatever would refuse — target, environment, production, observe — refuses
    here too, so an executor called by any path never acts outside a lower environment.
    """
    approved = DebugContext(
        service=topology.service,
        approvals=[approval_key(gate, action) for gate in ("schema", "autonomy")],
    )
    decision = Gatekeeper(topology).policy_check(action, approved)
    if decision.decision == "refuse":
        raise ActionRefused(decision.gate, decision.reason)
    return resolve(topology, action)


# -- the live resource ------------------------------------------------------------------------


def refuse_live(
    topology: Topology, action: BaseAction, resources: list[tuple[str, str, dict[str, str]]]
) -> None:
    """The executors' last word, on the real resources they are about to change.

    The gatekeeper judged the action from the map; an executor also sees the resource's
    own name and tags, so it asks again with them, each as (kind, name, tags).
    """
    component = target_component(topology, action)
    for kind, name, tags in resources:
        why = topology.resource_refusal(name, tags, component)
        if why:
            raise ActionRefused(
                "production", f"{kind} '{name}': {why}; production changes are made by a human"
            )


def refuse_foreign_account(topology: Topology, action: BaseAction, sts: Any) -> None:
    """Ask STS who we are; refuse unless the account is one the map lists as lower.

    Runs before any AWS side effect when the policy names ``aws_accounts``. A failing STS
    call refuses too: an account that cannot be confirmed is not a lower one.
    """
    component = target_component(topology, action)
    accounts = topology.aws_accounts_for(component)
    if accounts is None:
        return
    try:
        account = str(sts.get_caller_identity()["Account"])
    except Exception as exc:  # any failure: the account is unknown, so refuse
        raise ActionRefused(
            "production",
            f"could not confirm the AWS account with STS ({type(exc).__name__}); an account "
            "that cannot be confirmed is not a lower one",
        ) from None
    if account not in accounts:
        raise ActionRefused(
            "production",
            f"the AWS credentials are for account {account}, which is not one of the lower "
            f"accounts the map lists (policy.aws_accounts: {', '.join(accounts) or 'none'})",
        )
