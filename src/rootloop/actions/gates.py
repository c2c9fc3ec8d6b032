"""The gatekeeper: every action passes here before any side effect.

Gates, in the order they are asked (the first that objects decides):

    production       refuse  the environment, the target node or the resource is production
    schema           pause   the action changes a database schema, until a human approves it
    repeat           refuse  this exact action already failed for this diagnosis
    budget           refuse  the iteration budget is spent

Merging and pushing to the default branch are not gated here: no code path
does either (the git layer refuses it in one place), so there is nothing to
allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rootloop.actions.schema import sql_changes_schema
from rootloop.actions.types import ApplyPatch, BaseAction, RunMigration
from rootloop.context import DebugContext
from rootloop.errors import ActionRefused, ApprovalRequired
from rootloop.models import PriorContext
from rootloop.topology import Topology

Decision = Literal["allow", "approval", "refuse"]

#: attribute names of actions that name a concrete resource
RESOURCE_FIELDS = ("cluster", "service", "function_name", "application_name")


@dataclass(frozen=True)
class GateDecision:
    decision: Decision
    gate: str = ""
    reason: str = ""

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


class Gatekeeper:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def check(
        self,
        action: BaseAction,
        context: DebugContext,
        diagnosis_key: str | None = None,
        prior: PriorContext | None = None,
    ) -> GateDecision:
        topo = self.topology
        if topo.is_production_env:
            return GateDecision(
                "refuse",
                "production",
                f"the environment '{topo.environment}' is production: "
                "production changes are always made by a human",
            )
        node = topo.nodes.get(action.target) or next(iter(topo.checks_of(action.target)), None)
        if node is not None and topo.node_is_production(node):
            return GateDecision(
                "refuse", "production", f"'{action.target}' is marked production in the map"
            )
        for field in RESOURCE_FIELDS:
            value = getattr(action, field, None)
            if isinstance(value, str) and topo.is_production_resource(value):
                return GateDecision(
                    "refuse", "production", f"{field} '{value}' is named as production"
                )
        if is_schema_change(action) and approval_key("schema", action) not in context.approvals:
            return GateDecision(
                "approval",
                "schema",
                f"'{action.describe()}' changes the database schema; "
                f"approve with: rootloop approve {context.run_id} --gate schema",
            )
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
        return ALLOW

    def enforce(
        self,
        action: BaseAction,
        context: DebugContext,
        diagnosis_key: str | None = None,
        prior: PriorContext | None = None,
    ) -> None:
        """Raise the control-flow error for anything but 'allow'."""
        d = self.check(action, context, diagnosis_key, prior)
        if d.decision == "approval":
            raise ApprovalRequired(d.gate, d.reason)
        if d.decision == "refuse":
            raise ActionRefused(d.gate, d.reason)


def refuse_production_resources(
    topology: Topology, target: str, resources: list[tuple[str, str, dict[str, str]]]
) -> None:
    """The executors' last word, on the real resources they are about to change.

    The gatekeeper judged the action from the map; an executor also sees the cloud's
    own tags, so it asks again with them: the target node, then each resource as
    (kind, name, tags). Raises ``ActionRefused`` for anything production.
    """
    node = topology.nodes.get(target)
    if node is not None and topology.node_is_production(node):
        raise ActionRefused(
            "production",
            f"node '{node.name}' is production by the map's "
            "policy; production changes are for humans",
        )
    for kind, name, tags in resources:
        if topology.is_production_resource(name, tags):
            marked = [
                f"{k}={v}"
                for k, v in tags.items()
                if topology.policy.production_tags.get(k, "").lower() == str(v).lower()
            ]
            why = f"tagged {', '.join(marked)}" if marked else "named as production"
            raise ActionRefused(
                "production",
                f"{kind} '{name}' is {why} by the map's policy; production changes are for humans",
            )
