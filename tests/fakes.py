"""In-memory fakes for fast tests of the loop itself: a world, its skill, an executor,
a reasoner and a publisher, with hooks where a test can kill the run.

Why fakes and not the lab: the loop's state machine (phases, outcomes, resume) is
tested in seconds, and the lab tests the real parts. The fakes keep the real
``Loop``, ``ContextStore``, gates, sweep and verify: only the world, the reasoner
and the side effects are scripted.

A ``World`` is a dict of node states. ``WorldSkill`` reads it (registered as the
``fake-world`` skill, the map names the world by id). ``FakeExecutor`` applies an
action by running the ``effect`` a test gave for its kind, and remembers every side
effect so a test can count them. A hook raising ``Killed`` (a ``BaseException``, as
uncatchable by the loop's ``except Exception`` as a SIGKILL) stops the run at that
point; resuming is building a new ``Loop`` over the same store.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootloop import killpoints
from rootloop import topology as topology_mod
from rootloop.actions.types import ActionResult, BaseAction
from rootloop.context import ContextStore, DebugContext, HistoryEntry
from rootloop.events import Event
from rootloop.loop import Loop, RunState
from rootloop.models import Diagnosis, Finding, Signal, Status, Suspect
from rootloop.reasoning.base import Proposal, ReasoningInput
from rootloop.skills import registry
from rootloop.skills.base import BaseSkill, CheckContext, Node, SkillSettings

registry.register("fake-world", "tests.fakes:WorldSkill")


class Killed(BaseException):
    """A kill at a chosen point: not an Exception, so no handler in the loop catches it."""


@dataclass
class NodeState:
    status: Status = Status.OK
    summary: str = ""
    signals: dict[str, Any] = field(default_factory=dict)
    suspects: list[str] = field(default_factory=list)
    skill: str | None = None  # report as this skill (so real signatures can read it)


@dataclass
class World:
    """What every fake node looks like now. Tests and effects change it."""

    nodes: dict[str, NodeState] = field(default_factory=dict)
    id: str = field(default_factory=lambda: f"w{next(_IDS)}")

    def __post_init__(self) -> None:
        WORLDS[self.id] = self

    def set(
        self,
        node: str,
        status: Status = Status.OK,
        summary: str = "",
        *,
        skill: str | None = None,
        **signals: Any,
    ) -> World:
        self.nodes[node] = NodeState(status, summary or status.value, dict(signals), skill=skill)
        return self

    def heal(self, node: str) -> None:
        self.set(node, Status.OK, "ok")

    def finding(self, node: str, skill: str) -> Finding:
        state = self.nodes.get(node, NodeState(summary="ok"))
        return Finding(
            node=node,
            skill=state.skill or skill,
            status=state.status,
            summary=state.summary or state.status.value,
            signals=[Signal(name=k, value=v) for k, v in state.signals.items()],
            suspects=[Suspect(node=s, reason="fake") for s in state.suspects],
        )


_IDS = itertools.count(1)
WORLDS: dict[str, World] = {}


class WorldSettings(SkillSettings):
    world: str


class WorldSkill(BaseSkill):
    name = "fake-world"
    Settings = WorldSettings
    default_timeout = 30.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        s: WorldSettings = node.settings  # type: ignore[assignment]
        return WORLDS[s.world].finding(node.name, self.name)


def make_topology(
    tmp_path: Path,
    world: World,
    *,
    service: str = "svc",
    downstream: tuple[str, ...] = ("db", "cache"),
    policy: dict[str, Any] | None = None,
    extra: str = "",
) -> topology_mod.Topology:
    """A map of ``service`` (one self check) calling ``downstream``, every node on ``world``."""
    pol = {"settle_seconds": 0, "verify_timeout": 2, "max_iterations": 5, **(policy or {})}
    lines = [
        f"service: {service}",
        "self:",
        f"  compute: {{skill: fake-world, world: {world.id}}}",
        "downstream:",
        *(f"  - {{name: {d}, type: db, skill: fake-world, world: {world.id}}}" for d in downstream),
        "policy:",
        *(f"  {k}: {v}" for k, v in pol.items()),
        extra,
    ]
    path = tmp_path / "rootloop.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return topology_mod.load(path, env={})


Effect = Callable[[BaseAction], ActionResult | None]


@dataclass
class FakeExecutor:
    """Applies actions by running the test's effect for their kind.

    ``effects[kind](action)`` changes the world and returns the ``ActionResult`` (None:
    a plain success). ``before`` and ``after`` run around the side effect, with its
    name, so a test can raise ``Killed`` there. Every side effect lands in ``applied``.

    Like the real executors it is idempotent under the action's key (``<run>/<iteration>``):
    a resumed run that calls it again for a key whose side effect happened gets that
    result back, and the world is not changed twice.
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
        result = effect(action) if effect else None
        self.applied.append(action)
        self.landed[key] = result = result or ActionResult(
            ok=True, changed=f"applied {action.describe()}"
        )
        killpoints.hit(f"step:{action.kind}:landed")  # done in the world, not yet recorded
        if self.after:
            self.after(action)
        return result

    async def already_applied(
        self, action: BaseAction, ctx: DebugContext, entry: HistoryEntry
    ) -> bool:
        return ctx.action_key(entry) in self.landed


@dataclass
class ScriptedReasoner:
    """Blames the worst unhealthy node and proposes ``actions[node]`` for it.

    With nothing unhealthy it says "healthy"; with no action for the node it
    escalates. The category is the node's ``category`` signal, else ``unknown``.
    """

    actions: dict[str, BaseAction] = field(default_factory=dict)
    name: str = "fake"
    calls: int = 0

    async def propose(self, inp: ReasoningInput) -> Proposal:
        self.calls += 1
        bad = [f for f in inp.findings if f.status is not Status.OK]
        if not bad:
            d = Diagnosis(
                root_cause=inp.topology.service,
                category="healthy",
                summary="every node is healthy",
                confidence=0.9,
                reasoner=self.name,
            )
            return Proposal(diagnosis=d)
        f = max(bad, key=lambda x: x.status.severity)  # the worst: the first one on a tie
        node = inp.topology.nodes[f.node].component
        d = Diagnosis(
            root_cause=node,
            category=str(f.value("category", "unknown")),
            summary=f"{node}: {f.summary}",
            confidence=0.8,
            reasoner=self.name,
        )
        action = self.actions.get(node)
        if action is None:
            return Proposal(diagnosis=d, escalate_reason=f"no action for {node}")
        return Proposal(diagnosis=d, action=action, rung=f"{node}#{d.category}[0]")


@dataclass
class RecordingPublisher:
    """Remembers each publish: the run's status and outcomes at that moment."""

    published: list[tuple[str, list[str]]] = field(default_factory=list)

    def publish(self, run: RunState) -> str | None:
        ctx = run.context
        outcomes = [str(getattr(h, "outcome", None)) for h in ctx.history]
        self.published.append((ctx.status, outcomes))
        return f"pr://{ctx.run_id}"


@dataclass
class Harness:
    """One loop over a fake world, and what it emitted."""

    topology: topology_mod.Topology
    store: ContextStore
    reasoner: Any
    executor: Any
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)
    tests: Any = None
    events: list[Event] = field(default_factory=list)

    def loop(self) -> Loop:
        return Loop(
            topology=self.topology,
            store=self.store,
            reasoner=self.reasoner,
            executor=self.executor,
            events=self.events.append,
            publisher=self.publisher,
            tests=self.tests,
        )

    def new_context(self) -> DebugContext:
        return DebugContext(service=self.topology.service, environment=self.topology.environment)

    async def run(self, ctx: DebugContext | None = None) -> DebugContext:
        return await self.loop().run(ctx or self.new_context())

    async def resume(self, run_id: str) -> DebugContext:
        """What ``rootloop resume`` does after a kill: a new loop over the saved context."""
        return await self.loop().run(self.store.load(run_id))

    def kinds(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


# -- kill points (added by "once") ------------------------------------------------------


@dataclass
class KillAt:
    """Raise ``Killed`` the ``nth`` time the process reaches kill point ``name``.

    Installed as ``rootloop.killpoints.hook``; ``seen`` lists every point passed, so a
    test can also enumerate the points of an uninterrupted run and kill at each one.
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


def kill_points(monkeypatch: Any, name: str | None = None, nth: int = 1) -> KillAt:
    """Install a ``KillAt`` for the test (``name=None``: only record the points)."""
    from rootloop import killpoints

    hook = KillAt(name, nth)
    monkeypatch.setattr(killpoints, "hook", hook)
    return hook
