"""The loop's own test harness, built on the public ``rootloop.testing`` module.

``rootloop.testing`` has the world, the static skill, the scripted reasoner and the
recording executor and publisher; this adds what only rootloop's own tests need: a
``Harness`` that builds the ``Loop`` directly (no runner, no lease, no memory) so a
test can kill a run and resume it with a new loop over the same store, and the
pytest-flavoured ``kill_points``. The old names (``World``, ``FakeExecutor``) stay as
aliases for the tests that use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import rootloop
from rootloop import topology as topology_mod
from rootloop.context import ContextStore, DebugContext
from rootloop.events import Event
from rootloop.loop import Loop, TestRunner
from rootloop.reasoning.base import Reasoner
from rootloop.skills import registry
from rootloop.testing import (
    KillAt,
    Killed,
    NodeState,
    RecordingExecutor,
    RecordingPublisher,
    ScriptedReasoner,
    StaticWorld,
    write_map,
)

World = StaticWorld
FakeExecutor = RecordingExecutor

# maps written before rootloop.testing name the static skill by its old name
registry.register("fake-world", "rootloop.testing:StaticSkill")


def make_topology(tmp_path: Path, world: StaticWorld, **kw: Any) -> topology_mod.Topology:
    """``rootloop.testing.write_map``, loaded (with an empty environment)."""
    return rootloop.load_map(write_map(tmp_path, world, **kw), env={})


@dataclass
class Harness:
    """One loop over a static world, and what it emitted."""

    topology: topology_mod.Topology
    store: ContextStore
    reasoner: Reasoner
    executor: RecordingExecutor
    publisher: RecordingPublisher = field(default_factory=RecordingPublisher)
    tests: TestRunner | None = None
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


def kill_points(monkeypatch: pytest.MonkeyPatch, name: str | None = None, nth: int = 1) -> KillAt:
    """Install a ``KillAt`` for the test (``name=None``: only record the points)."""
    from rootloop import killpoints

    hook = KillAt(name, nth)
    monkeypatch.setattr(killpoints, "hook", hook)
    return hook


__all__ = [
    "FakeExecutor",
    "Harness",
    "KillAt",
    "Killed",
    "NodeState",
    "RecordingExecutor",
    "RecordingPublisher",
    "ScriptedReasoner",
    "World",
    "kill_points",
    "make_topology",
]
