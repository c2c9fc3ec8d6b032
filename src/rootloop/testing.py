"""Test doubles for code that runs rootloop: a static skill, a scripted reasoner, a
recording executor and publisher, and kill points.

In the spirit of pydantic-ai's ``TestModel`` and httpx's ``MockTransport``: the real
loop, gates, context store, sweep and verify run unchanged; only the world the checks
read, the reasoning and the side effects are scripted. A run on them takes well under
a second, so the loop's state machine (every phase, outcome and ending, kills and
resumes, approvals, budgets) is tested without a lab::

    import rootloop
    from rootloop.models.actions import SetEnvVar
    from rootloop.models import Status
    from rootloop.testing import RecordingExecutor, ScriptedReasoner, StaticWorld, write_map

    world = StaticWorld().set("db", Status.CRITICAL, "pool exhausted")
    fix = SetEnvVar(target="db", cluster="c", service="db", name="POOL", value="20")
    executor = RecordingExecutor({"set-env": lambda _action: world.heal("db")})
    with actions_land_on_static_checks():
        result = await rootloop.investigate(
            write_map(tmp_path, world), reasoner=ScriptedReasoner({"db": fix}),
            executor=executor, publisher=RecordingPublisher(), memory=False,
        )
    assert result.status == "healthy" and executor.applied == [fix]

- ``StaticWorld`` holds what each node looks like now; ``StaticSkill`` (the ``static``
  skill, registered when this module is imported) reports it. Tests and executor
  effects change the world.
- ``write_map`` writes a small map whose every check is a static one.
- ``ScriptedReasoner`` blames the worst unhealthy node and proposes the action the test
  gave for its component, or returns scripted proposals in order.
- ``RecordingExecutor`` applies an action by running the test's effect for its kind,
  records it, and is idempotent under the action's key like the real executors.
- ``RecordingPublisher`` records each ending instead of opening a pull request.
- ``KillAt`` / ``killed_at`` stop the process at a named kill point with ``Killed``
  (a ``BaseException``, as uncatchable by the loop as kill -9).
- ``actions_land_on_static_checks`` lets actions land on static checks: the target gate
  otherwise refuses, rightly, a ``set-env`` on a node that has no ECS check.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rootloop import killpoints
from rootloop.actions import gates
from rootloop.context import DebugContext, HistoryEntry
from rootloop.loop import RunState
from rootloop.models import Diagnosis, Finding, Signal, Status, Suspect
from rootloop.models.actions import ActionResult, BaseAction
from rootloop.models.nodes import Node, SkillSettings
from rootloop.reasoning.base import Proposal, ReasoningInput
from rootloop.skills import registry
from rootloop.skills.base import BaseSkill, CheckContext

if TYPE_CHECKING:
    from rootloop.reasoning.usage import UsageLedger

#: the skill name static checks carry in a map
STATIC = "static"


# -- the world the checks read ------------------------------------------------------------


@dataclass
class NodeState:
    status: Status = Status.OK
    summary: str = ""
    signals: dict[str, Any] = field(default_factory=dict)
    suspects: list[str] = field(default_factory=list)
    #: report as this skill (so the real fault signatures, which read a skill's signals,
    #: can match a static finding); None: ``static``
    skill: str | None = None


_IDS = itertools.count(1)
#: every world by id (kept for the process: a map may outlive the test's own reference)
_WORLDS: dict[str, StaticWorld] = {}


@dataclass(eq=False)
class StaticWorld:
    """What every static node looks like now. A node never set is healthy."""

    nodes: dict[str, NodeState] = field(default_factory=dict)
    id: str = field(default_factory=lambda: f"w{next(_IDS)}")

    def __post_init__(self) -> None:
        _WORLDS[self.id] = self

    def set(
        self,
        node: str,
        status: Status = Status.OK,
        summary: str = "",
        *,
        skill: str | None = None,
        suspects: Sequence[str] = (),
        **signals: Any,
    ) -> StaticWorld:
        """``node`` looks like this from now on (signals by name, e.g. ``category=...``)."""
        self.nodes[node] = NodeState(
            status, summary or status.value, dict(signals), list(suspects), skill
        )
        return self

    def heal(self, node: str) -> None:
        self.set(node, Status.OK, "ok")

    def finding(self, node: str) -> Finding:
        state = self.nodes.get(node, NodeState(summary="ok"))
        return Finding(
            node=node,
            skill=state.skill or STATIC,
            status=state.status,
            summary=state.summary or state.status.value,
            signals=[Signal(name=k, value=v) for k, v in state.signals.items()],
            suspects=[Suspect(node=s, reason="scripted") for s in state.suspects],
        )


class StaticSettings(SkillSettings):
    world: str


class StaticSkill(BaseSkill):
    """Reports the node as its ``StaticWorld`` says (the map names the world by id)."""

    name = STATIC
    Settings = StaticSettings
    default_timeout = 30.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        settings = node.settings
        if not isinstance(settings, StaticSettings):
            raise TypeError(f"node '{node.name}' has no static settings")
        world = _WORLDS.get(settings.world)
        if world is None:
            raise LookupError(f"static world '{settings.world}' no longer exists")
        return world.finding(node.name)


registry.register(STATIC, f"{__name__}:StaticSkill")


def write_map(
    directory: Path,
    world: StaticWorld,
    *,
    service: str = "svc",
    downstream: Sequence[str] = ("db", "cache"),
    policy: dict[str, Any] | None = None,
    extra: str = "",
    repo: Path | None = None,
) -> Path:
    """A map of ``service`` (one ``compute`` check) calling ``downstream``, every check
    static on ``world``, in environment ``staging`` unless ``extra`` names one. The policy
    settles for 50 ms (a failing verify sweeps about twenty times a second instead of
    spinning) and verifies for two seconds at most. With
    ``repo`` (a local git clone), the run's pull request goes to the local forge there."""
    pol = {"settle_seconds": 0.05, "verify_timeout": 2, "max_iterations": 5, **(policy or {})}
    lines = [
        f"service: {service}",
        *([] if "environment:" in extra else ["environment: staging"]),
        "self:",
        f"  compute: {{skill: {STATIC}, world: {world.id}}}",
        *([f"  repo: {{path: '{repo}', forge: local}}"] if repo is not None else []),
        "downstream:",
        *(f"  - {{name: {d}, type: db, skill: {STATIC}, world: {world.id}}}" for d in downstream),
        "policy:",
        *(f"  {k}: {v}" for k, v in pol.items()),
        extra,
    ]
    path = directory / "rootloop.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextmanager
def actions_land_on_static_checks() -> Iterator[None]:
    """Within the block, the target gate takes a static check as the resource of every
    action kind. For tests only: it changes a process-wide table (not thread-safe)."""
    saved = dict(gates.SKILL_OF)
    gates.SKILL_OF.update(dict.fromkeys(saved, STATIC))
    try:
        yield
    finally:
        gates.SKILL_OF.clear()
        gates.SKILL_OF.update(saved)


# -- reasoning --------------------------------------------------------------------------


@dataclass
class ScriptedReasoner:
    """Blames the worst unhealthy node and proposes ``actions[component]`` for it.

    With nothing unhealthy it says "healthy"; with no action for the component it
    escalates. The category is the node's ``category`` signal, else ``unknown``. With
    ``script``, it returns those proposals in order instead (then repeats the last).
    """

    actions: dict[str, BaseAction] = field(default_factory=dict)
    script: list[Proposal] = field(default_factory=list)
    name: str = "scripted"
    ledger: UsageLedger | None = None
    reads_code: bool = False
    #: every input it was asked about, in order
    inputs: list[ReasoningInput] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.inputs)

    async def propose(self, inp: ReasoningInput) -> Proposal:
        self.inputs.append(inp)
        if self.script:
            return self.script[min(len(self.inputs), len(self.script)) - 1]
        bad = [f for f in inp.findings if f.status is not Status.OK]
        if not bad:
            healthy = Diagnosis(
                root_cause=inp.topology.service,
                category="healthy",
                summary="every node is healthy",
                confidence=0.9,
                reasoner=self.name,
            )
            return Proposal(diagnosis=healthy)
        worst = max(bad, key=lambda f: f.status.severity)  # the first one on a tie
        component = inp.topology.nodes[worst.node].component
        diagnosis = Diagnosis(
            root_cause=component,
            category=str(worst.value("category", "unknown")),
            summary=f"{component}: {worst.summary}",
            confidence=0.8,
            reasoner=self.name,
        )
        action = self.actions.get(component)
        if action is None:
            return Proposal(diagnosis=diagnosis, escalate_reason=f"no action for {component}")
        return Proposal(
            diagnosis=diagnosis, action=action, rung=f"{component}#{diagnosis.category}[0]"
        )


# -- side effects -----------------------------------------------------------------------

Effect = Callable[[BaseAction], ActionResult | None]


@dataclass
class RecordingExecutor:
    """Applies actions by running the test's effect for their kind, and records them.

    ``effects[kind](action)`` changes the world and returns the ``ActionResult`` (None: a
    plain success). ``before`` and ``after`` run around the side effect, so a test can
    kill the run there. Every side effect lands in ``applied``. Like the real executors
    it is idempotent under the action's key (``<run>/<iteration>``): called again for a
    key whose side effect happened, it returns that result and changes nothing.
    """

    effects: dict[str, Effect] = field(default_factory=dict)
    applied: list[BaseAction] = field(default_factory=list)
    before: Callable[[BaseAction], None] | None = None
    after: Callable[[BaseAction], None] | None = None
    landed: dict[str, ActionResult] = field(default_factory=dict)

    async def apply(
        self,
        action: BaseAction,
        ctx: DebugContext,
        entry: HistoryEntry,
        progress: Callable[[str], None],
    ) -> ActionResult:
        key = ctx.action_key(entry)
        if key in self.landed:  # found by its key: finish, do not repeat
            return self.landed[key]
        if self.before:
            self.before(action)
        progress(f"step: {action.kind}")  # the checkpoint right before the side effect
        killpoints.hit(f"step:{action.kind}:apply")
        effect = self.effects.get(action.kind)
        result = (effect(action) if effect else None) or ActionResult(
            ok=True, changed=f"applied {action.describe()}"
        )
        self.applied.append(action)
        self.landed[key] = result
        killpoints.hit(f"step:{action.kind}:landed")  # done in the world, not yet recorded
        if self.after:
            self.after(action)
        return result

    async def already_applied(
        self, action: BaseAction, ctx: DebugContext, entry: HistoryEntry
    ) -> bool:
        return ctx.action_key(entry) in self.landed

    async def worktree(self, ctx: DebugContext) -> Path | None:
        return None  # no repository: a reasoner that reads code gets no worktree


@dataclass
class RecordingPublisher:
    """Records each published ending (status and outcomes) instead of opening a PR."""

    published: list[tuple[str, list[str]]] = field(default_factory=list)
    #: per publication, the nodes the report had a finding for (its graph's checked nodes)
    checked: list[set[str]] = field(default_factory=list)

    async def publish(self, run: RunState) -> str | None:
        ctx = run.context
        self.published.append((ctx.status, [str(h.outcome) for h in ctx.history]))
        self.checked.append({f.node for f in run.report_findings()})
        return f"pr://{ctx.run_id}"


# -- kill points --------------------------------------------------------------------------


class Killed(BaseException):
    """A kill at a chosen point: not an ``Exception``, so no handler in the loop runs."""


@dataclass
class KillAt:
    """Raise ``Killed`` the ``nth`` time the process reaches kill point ``name``.

    ``seen`` lists every point passed, so a test can enumerate the points of an
    uninterrupted run (``name=None``) and then kill at each one.
    """

    name: str | None = None
    nth: int = 1
    seen: list[str] = field(default_factory=list)
    fired: bool = False

    def __call__(self, point: str) -> None:
        self.seen.append(point)
        if not self.fired and point == self.name and self.seen.count(point) >= self.nth:
            self.fired = True
            raise Killed(point)


@contextmanager
def killed_at(name: str | None = None, nth: int = 1) -> Iterator[KillAt]:
    """Install a ``KillAt`` as the process's kill-point hook for the block."""
    hook = KillAt(name, nth)
    saved = killpoints.hook
    killpoints.hook = hook
    try:
        yield hook
    finally:
        killpoints.hook = saved


__all__ = [
    "STATIC",
    "Effect",
    "KillAt",
    "Killed",
    "NodeState",
    "RecordingExecutor",
    "RecordingPublisher",
    "ScriptedReasoner",
    "StaticSettings",
    "StaticSkill",
    "StaticWorld",
    "actions_land_on_static_checks",
    "killed_at",
    "write_map",
]
