"""The actions rootloop can take, as a discriminated union: data, executed by ``rootloop.actions``.

Each action says what it touches (``target``: a node of the map), which family
it belongs to (infra / code / data), whether it changes a database schema, and
how to describe itself in the seed's words ("infra fix - increased ECS memory to
2048"). ``fingerprint`` identifies an action by what it does, not why, so the
loop can tell that a proposal repeats one that already failed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from rootloop.analysis.schema import edits_change_schema

Family = Literal["infra", "code", "data"]


class BaseAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    family: ClassVar[Family] = "infra"
    schema_change: ClassVar[bool] = False

    kind: str
    target: str = Field(description="the node of the map this action changes")
    reason: str = ""

    def fingerprint(self) -> str:
        body = self.model_dump(mode="json", exclude={"reason"})
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def describe(self) -> str:
        return f"{self.family} fix - {self._what()}"

    def _what(self) -> str:
        return self.kind


class SetTaskResources(BaseAction):
    kind: Literal["set-task-resources"] = "set-task-resources"
    cluster: str
    service: str
    memory: int | None = Field(default=None, ge=128, le=122880)
    cpu: int | None = Field(default=None, ge=128, le=16384)

    def _what(self) -> str:
        parts = []
        if self.memory is not None:
            parts.append(f"set ECS task memory to {self.memory}")
        if self.cpu is not None:
            parts.append(f"set ECS task cpu to {self.cpu}")
        return " and ".join(parts) or "re-register the task definition"


class SetEnvVar(BaseAction):
    kind: Literal["set-env"] = "set-env"
    cluster: str
    service: str
    container: str | None = None
    name: str
    value: str

    def _what(self) -> str:
        return f"set {self.name}={self.value} on {self.service}"


class RollbackTaskDefinition(BaseAction):
    kind: Literal["rollback-task-definition"] = "rollback-task-definition"
    cluster: str
    service: str
    task_definition: str | None = None  # None: the revision before the current one

    def _what(self) -> str:
        return f"roll {self.service} back to {self.task_definition or 'the previous revision'}"


class ForceDeployment(BaseAction):
    kind: Literal["restart"] = "restart"
    cluster: str
    service: str

    def _what(self) -> str:
        return f"force a new deployment of {self.service}"


class ScaleService(BaseAction):
    kind: Literal["scale"] = "scale"
    cluster: str
    service: str
    desired: int = Field(ge=0, le=1000)

    def _what(self) -> str:
        return f"scale {self.service} to {self.desired} tasks"


class PlacementStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["spread", "binpack", "random"]
    field: str | None = None  # instanceId, attribute:ecs.availability-zone, memory, cpu


class SetPlacementStrategy(BaseAction):
    """An ECS service's task placement strategy (a new deployment re-places its tasks)."""

    kind: Literal["set-placement-strategy"] = "set-placement-strategy"
    cluster: str
    service: str
    strategy: tuple[PlacementStep, ...] = Field(min_length=1, max_length=5)

    def _what(self) -> str:
        steps = ", ".join(f"{s.type}({s.field or ''})" for s in self.strategy)
        return f"place {self.service}'s tasks by {steps}"


class SetCapacityProviderStrategy(BaseAction):
    """Put a base of an ECS service's tasks on one capacity provider (e.g. on-demand
    under Spot); the service's other providers keep their weights."""

    kind: Literal["set-capacity-provider-strategy"] = "set-capacity-provider-strategy"
    cluster: str
    service: str
    base_provider: str = Field(min_length=1)
    base: int = Field(default=1, ge=1, le=100_000)

    def _what(self) -> str:
        return f"run a base of {self.base} {self.service} task(s) on {self.base_provider}"


class TerminateBackend(BaseAction):
    """Ends PostgreSQL sessions: one pid, or every session of an application/state."""

    kind: Literal["terminate-backend"] = "terminate-backend"
    pid: int | None = None
    application_name: str | None = None
    state: str | None = None  # e.g. "idle in transaction"
    blocking_only: bool = False

    def _what(self) -> str:
        if self.pid is not None:
            return f"terminate blocking PostgreSQL backend pid {self.pid}"
        who = self.application_name or "any application"
        how = f" in state '{self.state}'" if self.state else ""
        return f"terminate PostgreSQL sessions of {who}{how}"


class SetRedisPolicy(BaseAction):
    kind: Literal["set-redis-policy"] = "set-redis-policy"
    policy: Literal[
        "noeviction",
        "allkeys-lru",
        "volatile-lru",
        "allkeys-lfu",
        "volatile-lfu",
        "allkeys-random",
        "volatile-random",
        "volatile-ttl",
    ]
    maxmemory: int | None = None

    def _what(self) -> str:
        return f"set Redis maxmemory-policy to {self.policy}"


class SetConnectionLimit(BaseAction):
    """ALTER ROLE/DATABASE … CONNECTION LIMIT: a per-role or per-database ceiling on
    PostgreSQL sessions (-1: none; the server-wide max_connections still bounds)."""

    kind: Literal["set-connection-limit"] = "set-connection-limit"
    scope: Literal["role", "database"]
    name: str = Field(min_length=1, max_length=63)
    limit: int = Field(ge=-1, le=100_000)

    def _what(self) -> str:
        to = "no limit" if self.limit < 0 else str(self.limit)
        return f"set the CONNECTION LIMIT of PostgreSQL {self.scope} {self.name} to {to}"


class SetFunctionEnv(BaseAction):
    """Change one environment variable of a Lambda function's configuration."""

    kind: Literal["set-function-env"] = "set-function-env"
    function_name: str
    name: str
    value: str | None  # None removes the variable

    def _what(self) -> str:
        if self.value is None:
            return f"remove {self.name} from {self.function_name}"
        return f"set {self.name}={self.value} on {self.function_name}"


class SetEventSourceMapping(BaseAction):
    kind: Literal["set-event-source-mapping"] = "set-event-source-mapping"
    function_name: str
    uuid: str | None = None  # None: every mapping of the function
    enabled: bool = True

    def _what(self) -> str:
        state = "enable" if self.enabled else "disable"
        return f"{state} the event-source mapping of {self.function_name}"


class RevertFunctionConfig(BaseAction):
    """Put a Lambda function's configuration (handler, runtime, timeout, memory,
    environment) back to that of one of its published versions."""

    kind: Literal["revert-function-config"] = "revert-function-config"
    function_name: str
    version: str = Field(pattern=r"^[0-9]+$")

    def _what(self) -> str:
        return f"restore {self.function_name}'s configuration of version {self.version}"


class SetFunctionTimeout(BaseAction):
    kind: Literal["set-function-timeout"] = "set-function-timeout"
    function_name: str
    timeout: int = Field(ge=1, le=900)

    def _what(self) -> str:
        return f"set {self.function_name}'s timeout to {self.timeout} s"


class SetFunctionConcurrency(BaseAction):
    """A function's reserved concurrency (-1: remove the reservation, back to the
    account's unreserved pool)."""

    kind: Literal["set-function-concurrency"] = "set-function-concurrency"
    function_name: str
    reserved: int = Field(ge=-1, le=100_000)

    def _what(self) -> str:
        to = "no reservation" if self.reserved < 0 else str(self.reserved)
        return f"set {self.function_name}'s reserved concurrency to {to}"


class RevertCommit(BaseAction):
    family: ClassVar[Family] = "code"
    kind: Literal["revert-commit"] = "revert-commit"
    commit: str

    def _what(self) -> str:
        return f"revert commit {self.commit[:7]}"


class FileEdit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    search: str
    replace: str


class ApplyPatch(BaseAction):
    """A code change: search-and-replace edits, committed on the run's branch."""

    family: ClassVar[Family] = "code"
    kind: Literal["apply-patch"] = "apply-patch"
    title: str
    edits: tuple[FileEdit, ...] = ()

    def _what(self) -> str:
        return self.title

    @property
    def touches_schema(self) -> bool:
        return edits_change_schema(self.edits)


class RunMigration(BaseAction):
    family: ClassVar[Family] = "data"
    schema_change: ClassVar[bool] = True
    kind: Literal["run-migration"] = "run-migration"
    name: str
    sql: str

    def _what(self) -> str:
        return f"run migration {self.name}"


Action = Annotated[
    SetTaskResources
    | SetEnvVar
    | RollbackTaskDefinition
    | ForceDeployment
    | ScaleService
    | SetPlacementStrategy
    | SetCapacityProviderStrategy
    | TerminateBackend
    | SetRedisPolicy
    | SetConnectionLimit
    | SetFunctionEnv
    | SetEventSourceMapping
    | RevertFunctionConfig
    | SetFunctionTimeout
    | SetFunctionConcurrency
    | RevertCommit
    | ApplyPatch
    | RunMigration,
    Field(discriminator="kind"),
]

_ADAPTER: TypeAdapter[Any] = TypeAdapter(Action)


def parse_action(data: dict[str, Any]) -> BaseAction:
    action: BaseAction = _ADAPTER.validate_python(data)
    return action


class ActionResult(BaseModel):
    """What an action did, and how a human would undo it."""

    ok: bool
    changed: str
    undo: str = ""
    commit: str | None = None
    details: dict[str, Any] = {}
    #: the real world already had the requested state (an env var set to the value it
    #: had, a policy already in force, no session to end): nothing changed, so whatever
    #: happens next, this action fixed nothing
    no_op: bool = False


def fields_of(kind: str) -> set[str]:
    """The field names the action of this ``kind`` accepts (empty for an unknown kind)."""
    for cls in BaseAction.__subclasses__():
        if cls.model_fields["kind"].default == kind:
            return set(cls.model_fields)
    return set()


@dataclass(frozen=True)
class Refusal:
    """A gate's refusal of a proposed action: which gate, and why."""

    gate: str
    reason: str


class ActionScreen(Protocol):
    """What a reasoner may ask before proposing an action: would the gates refuse it?

    The loop hands one in (``rootloop.actions.screen``) on ``ReasoningInput``, so a model
    can be told to try again, while reasoning never imports the gates. It is advice: the
    loop's own gate check before acting decides whatever the screen said.
    """

    def __call__(self, action: BaseAction, diagnosis_key: str, /) -> Refusal | None: ...
