"""Assembles an investigation: the map, the reasoner, the executor, memory, the views.

``start`` begins a new run; ``resume`` continues a persisted one (after a kill,
or after a human approved a gate). Both end in the same ``Loop.run``, holding
the lease of the service and environment for the whole run (``rootloop.lease``):
a second run on the same service gets ``LeaseHeld`` before it writes anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rootloop import topology as topology_mod
from rootloop.actions.dispatch import Dispatcher
from rootloop.context import ContextStore, DebugContext
from rootloop.events import Event, Fanout
from rootloop.lease import Lease
from rootloop.loop import Loop
from rootloop.models import LoadTestResult, UiTestResult
from rootloop.publish import Publisher
from rootloop.reasoning.base import Reasoner
from rootloop.reasoning.rules import RulesReasoner
from rootloop.state import state_dir
from rootloop.topology import Topology

ReasonerKind = Literal["rules", "model", "hybrid", "auto"]


@dataclass
class Session:
    topology: Topology
    state_root: Path
    store: ContextStore
    memory: object | None

    @classmethod
    def open(
        cls, map_path: Path, state_root: Path | None = None, *, with_memory: bool = True
    ) -> Session:
        topo = topology_mod.load(map_path)
        root = state_root or state_dir(map_path.resolve().parent)
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
        self, ctx: DebugContext, sinks: list[Callable[[Event], None]], reasoner: Reasoner
    ) -> Loop:
        fan = Fanout(*sinks)
        if self.memory is not None:
            fan.add(
                self.memory.recorder(
                    ctx.run_id,
                    ctx.service,  # type: ignore[attr-defined]
                    self.topology.redactor,
                )
            )
        run_dir = self.store.run_dir(ctx.run_id)
        return Loop(
            topology=self.topology,
            store=self.store,
            reasoner=reasoner,
            executor=Dispatcher(self.topology, self.state_root),
            events=fan,
            memory=self.memory,  # type: ignore[arg-type]
            publisher=Publisher(self.state_root, run_dir),
            tests=make_tests(run_dir),
        )

    def new_context(self, map_path: Path) -> DebugContext:
        return DebugContext(
            service=self.topology.service,
            environment=self.topology.environment,
            topology_file=str(map_path.resolve()),
        )

    def archive(self, ctx: DebugContext, loop: Loop) -> None:
        """Into memory: the context and both summaries — the model's when a model reasons."""
        if self.memory is None or loop.state is None:
            return
        findings = loop.state.findings or loop.state.first_findings
        summarizer = model_summarizer(loop.reasoner)
        if summarizer is None:
            self.memory.archive(ctx, findings, self.topology.redactor)  # type: ignore[attr-defined]
            return
        asyncio.run(
            self.memory.archive_async(  # type: ignore[attr-defined]
                ctx, findings, self.topology.redactor, summarizer
            )
        )
        summarizer.ledger.store(ctx)
        self.store.save(ctx)


def model_summarizer(reasoner: Reasoner):
    """The model behind a model/hybrid reasoner writes the summaries too."""
    from rootloop.reasoning.model import ModelReasoner

    model = getattr(reasoner, "model", None)
    if not isinstance(model, ModelReasoner):
        return None
    from rootloop.reasoning.summarize import ModelSummarizer

    return ModelSummarizer(model.model, ledger=model.ledger, label=model.config.label)


def make_tests(run_dir: Path):
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


def run(
    session: Session,
    ctx: DebugContext,
    sinks: list[Callable[[Event], None]],
    reasoner: Reasoner,
    *,
    wait_lease: float = 0.0,
) -> DebugContext:
    """One run under the service's lease (``LeaseHeld`` when another run holds it and does
    not give it back within ``wait_lease`` seconds)."""
    with lease_for(session, ctx).held(wait_lease) as lease:
        loop = session.loop(ctx, sinks, reasoner)
        loop.lease = lease
        try:
            return asyncio.run(loop.run(ctx))
        finally:
            session.archive(ctx, loop)
