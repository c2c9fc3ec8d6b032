"""Assembles an investigation: the map, the reasoner, the executor, memory, the views.

``Session.open`` reads the map and its state; ``run`` runs (or resumes) one
investigation to an end under the lease of the service and environment for the
whole run (``rootloop.lease``): a second run on the same service gets ``LeaseHeld``
before it writes anything. Everything here is async and never starts an event loop
of its own, so the loop runs inside any async service (the MCP server, ``rootloop
serve``); the CLI is the one place that starts one. ``rootloop.investigate`` is the
public face of this module.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rootloop import topology as topology_mod
from rootloop.actions.dispatch import Dispatcher
from rootloop.actions.gates import approval_key
from rootloop.actions.once import Executor
from rootloop.context import ContextStore, DebugContext
from rootloop.errors import StateError
from rootloop.events import Event, Fanout
from rootloop.lease import Lease
from rootloop.loop import Loop, Publisher, TestRunner
from rootloop.models import LoadTestResult, UiTestResult
from rootloop.publish import Publisher as PullRequestPublisher
from rootloop.reasoning.base import Reasoner
from rootloop.reasoning.rules import RulesReasoner
from rootloop.skills import registry
from rootloop.state import state_dir
from rootloop.topology import Topology

if TYPE_CHECKING:  # memory and the model summarizer load on first use, not with the runner
    from rootloop.memory import Memory
    from rootloop.reasoning.summarize import ModelSummarizer

ReasonerKind = Literal["rules", "model", "hybrid", "auto"]


@dataclass
class Session:
    topology: Topology
    state_root: Path
    store: ContextStore
    memory: Memory | None

    @classmethod
    def open(
        cls, map_path: Path, state_root: Path | None = None, *, with_memory: bool = True
    ) -> Session:
        return cls.of(
            topology_mod.load(map_path, skills=registry), state_root, with_memory=with_memory
        )

    @classmethod
    def of(
        cls, topo: Topology, state_root: Path | None = None, *, with_memory: bool = True
    ) -> Session:
        """A session on a map already loaded; state beside the map file unless given."""
        root = state_root or state_dir(topo.file.resolve().parent)
        memory = None
        if with_memory:
            from rootloop.memory import Memory, MemoryConfig

            config = MemoryConfig.model_validate(topo.memory or {})
            memory = Memory(config.root or root / "memory", config)
        return cls(topo, root, ContextStore(root), memory)

    def reasoner(self, kind: ReasonerKind = "auto", map_path: Path | None = None) -> Reasoner:
        rules = RulesReasoner()
        if kind == "rules":
            return rules
        from rootloop.reasoning.hybrid import build_reasoner
        from rootloop.reasoning.model import load_model_config

        config = load_model_config(map_path)
        if config is None:
            if kind == "auto":
                return rules
            from rootloop.errors import UserError

            raise UserError(
                f"--reasoner {kind} needs a model: set ROOTLOOP_MODEL (e.g. "
                "anthropic:claude-sonnet-4-5) or a 'model:' block; see docs/model.md"
            )
        return build_reasoner("hybrid" if kind == "auto" else kind, rules, config)

    def loop(
        self,
        ctx: DebugContext,
        sinks: Sequence[Callable[[Event], None]],
        reasoner: Reasoner,
        *,
        executor: Executor | None = None,
        publisher: Publisher | None = None,
        tests: TestRunner | None = None,
    ) -> Loop:
        """The loop of one run; the real executor, PR publisher and load/UI tests unless
        the caller brings its own (``rootloop.testing`` does)."""
        fan = Fanout(*sinks)
        if self.memory is not None:
            fan.add(self.memory.recorder(ctx.run_id, ctx.service, self.topology.redactor))
        run_dir = self.store.run_dir(ctx.run_id)
        return Loop(
            topology=self.topology,
            store=self.store,
            reasoner=reasoner,
            executor=executor or Dispatcher(self.topology, self.state_root),
            events=fan,
            memory=self.memory,
            publisher=publisher or PullRequestPublisher(self.state_root, run_dir),
            tests=tests or make_tests(run_dir),
        )

    def new_context(self, map_path: Path | None = None) -> DebugContext:
        return DebugContext(
            service=self.topology.service,
            environment=self.topology.environment,
            topology_file=str((map_path or self.topology.file).resolve()),
        )

    def context(self, run_id: str | None, map_path: Path | None = None) -> DebugContext:
        """The persisted run ``run_id`` (to resume it), or a new one under that id; a new
        run when ``run_id`` is None."""
        if run_id is None:
            return self.new_context(map_path)
        self.store.run_dir(run_id)  # a malformed id is a clear StateError, before anything
        try:
            ctx = self.store.load(run_id)
        except StateError:
            ctx = self.new_context(map_path)
            ctx.run_id = run_id
            return ctx
        if approved_and_paused(ctx):
            ctx.status = "running"  # saved by the run once it holds the lease, not before
        return ctx

    async def archive(self, ctx: DebugContext, loop: Loop) -> None:
        """Into memory: the context and both summaries — the model's when a model reasons."""
        if self.memory is None or loop.state is None:
            return
        findings = loop.state.findings or loop.state.first_findings
        summarizer = model_summarizer(loop.reasoner)
        if summarizer is None:
            await asyncio.to_thread(self.memory.archive, ctx, findings, self.topology.redactor)
            return
        await self.memory.archive_async(ctx, findings, self.topology.redactor, summarizer)
        summarizer.ledger.store(ctx)
        self.store.save(ctx)


def approved_and_paused(ctx: DebugContext) -> bool:
    """The run waits at a gate whose approval is recorded: resuming it acts."""
    gate, entry = ctx.pending_gate, ctx.current
    return (
        ctx.status == "paused"
        and gate is not None
        and entry is not None
        and entry.action_detail is not None
        and approval_key(gate.gate, entry.action_detail) in ctx.approvals
    )


def model_summarizer(reasoner: Reasoner) -> ModelSummarizer | None:
    """The model behind a model/hybrid reasoner writes the summaries too."""
    from rootloop.reasoning.hybrid import HybridReasoner
    from rootloop.reasoning.model import ModelReasoner

    model = reasoner.model if isinstance(reasoner, HybridReasoner) else reasoner
    if not isinstance(model, ModelReasoner):
        return None
    from rootloop.reasoning.summarize import ModelSummarizer

    return ModelSummarizer(model.model, ledger=model.ledger, label=model.config.label)


def make_tests(
    run_dir: Path,
) -> Callable[[Topology], Awaitable[tuple[LoadTestResult | None, UiTestResult | None]]]:
    async def run(topo: Topology) -> tuple[LoadTestResult | None, UiTestResult | None]:
        from rootloop.skills.load_test import run_load_test
        from rootloop.skills.ui_test import run_ui_test

        load = await run_load_test(topo.load_test) if topo.load_test else None
        ui = await run_ui_test(topo.ui_test, run_dir / "ui.png") if topo.ui_test else None
        return load, ui

    return run


def lease_for(session: Session, ctx: DebugContext) -> Lease:
    """The lease of the run's service and environment, in the session's state store."""
    return Lease(session.state_root, ctx.service, session.topology.environment, ctx.run_id)


async def run(
    session: Session,
    ctx: DebugContext,
    sinks: Sequence[Callable[[Event], None]],
    reasoner: Reasoner,
    *,
    wait_lease: float = 0.0,
    executor: Executor | None = None,
    publisher: Publisher | None = None,
    tests: TestRunner | None = None,
) -> DebugContext:
    """One run under the service's lease (``LeaseHeld`` when another run holds it and does
    not give it back within ``wait_lease`` seconds). Runs in the caller's event loop."""
    lease = lease_for(session, ctx)
    # acquiring may wait for another run (polling SQLite): off the event loop
    await asyncio.to_thread(lease.acquire, wait_lease)
    lease.start_heartbeat()
    try:
        loop = session.loop(
            ctx, sinks, reasoner, executor=executor, publisher=publisher, tests=tests
        )
        loop.lease = lease
        try:
            return await loop.run(ctx)
        finally:
            await session.archive(ctx, loop)
    finally:
        with contextlib.suppress(StateError):
            lease.release()


__all__ = ["ReasonerKind", "Session", "lease_for", "run"]
