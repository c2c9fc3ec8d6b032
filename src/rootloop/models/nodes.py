"""A map's nodes and the settings a skill reads from them: data shared by the map
loader (``rootloop.topology``), the skills, the sweep and the gates.

They live in the model layer so that the loader and the skills both point down at
them instead of at each other.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationInfo, model_validator


class SkillSettings(BaseModel):
    """Per-node settings a skill reads from the map. Unknown keys are map errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckMemory:
    """What a node's checks remember from one sweep to the next (e.g. Redis's cumulative
    counters, to report the change since the last sweep).

    It belongs to the node *as loaded*: each ``topology.load`` makes new nodes, so two
    maps that both name a node ``redis``, or two runs of one map, never share it, while
    the sweeps of one run (which keep their topology) do. Skill instances are shared by
    the whole process (the registry makes one per name), so a skill must keep such
    state here, never on itself. Not part of the node's identity: always compares equal.
    """

    __slots__ = ("_by_skill",)

    def __init__(self) -> None:
        self._by_skill: dict[str, dict[str, Any]] = {}

    def of(self, skill: str) -> dict[str, Any]:
        """The mutable scratch space of one skill for this node."""
        return self._by_skill.setdefault(skill, {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CheckMemory)

    def __hash__(self) -> int:
        return hash(CheckMemory)


class Node(BaseModel):
    """A resolved node of the map: where it sits, which skill checks it, how."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    type: str
    skill: str
    role: Literal["upstream", "self", "downstream"]
    component: str  # the vertex of the dependency graph this check belongs to
    service: str  # the map that declared it
    timeout: float
    production: bool = False
    tags: dict[str, str] = {}
    settings: SkillSettings = SkillSettings()

    _memory: CheckMemory = PrivateAttr(default_factory=CheckMemory)

    def memory(self, skill: str) -> dict[str, Any]:
        """This loaded node's memory for ``skill`` (see ``CheckMemory``)."""
        return self._memory.of(skill)


class SkillSpec(Protocol):
    """What the map loader needs to know of a skill: the schema of its node settings
    and how long a check may take when the map does not say."""

    Settings: ClassVar[type[SkillSettings]]
    default_timeout: ClassVar[float]


class SkillCatalog(Protocol):
    """Finds a skill by name. The loader is handed one (``rootloop.skills.registry`` is
    the built-in one), so it never imports the skills itself; an unknown name raises a
    ``rootloop.errors.UserError`` whose text says what is known."""

    def get(self, name: str, /) -> SkillSpec: ...


def node_default(*fields: str) -> Any:
    """A before-validator for Settings: when none of ``fields`` is set in the map, the
    first takes the node's name, so the seed's ``{name, type, skill}`` nodes load as they
    are (``sqs-payments`` is the queue ``sqs-payments``)."""

    def fill(cls: type, data: Any, info: ValidationInfo) -> Any:
        node = (info.context or {}).get("node")
        if isinstance(data, dict) and node and not any(data.get(f) for f in fields):
            return {**data, fields[0]: node}
        return data

    validator: Any = model_validator(mode="before")
    return validator(classmethod(fill))


def repo_default(path_field: str = "repo_path", remote_field: str = "repo_remote") -> Any:
    """A before-validator for Settings: a check of the service's own code (role ``self``)
    that names no repository takes the map's ``self.repo`` (path resolved against the
    map's file, remote). The loader passes it as ``repo`` in the validation context only
    for the map's own checks: an upstream's compute is not built from this repository."""

    def fill(cls: type, data: Any, info: ValidationInfo) -> Any:
        repo = (info.context or {}).get("repo")
        if isinstance(data, dict) and isinstance(repo, dict) and not data.get(path_field):
            filled = {**data, path_field: repo.get("path")}
            if repo.get("remote") and not data.get(remote_field):
                filled[remote_field] = repo["remote"]
            return filled
        return data

    validator: Any = model_validator(mode="before")
    return validator(classmethod(fill))
