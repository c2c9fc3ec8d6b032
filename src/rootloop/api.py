"""rootloop's public API: ``investigate``, ``load_map``, ``sweep`` and the types they return.

Everything here is re-exported by ``rootloop`` itself (``rootloop.investigate`` ...);
that package namespace is the supported surface. Every other module is private: its
names may change between releases.

All of it is async and none of it starts an event loop: ``await rootloop.investigate(...)``
runs inside whatever loop the caller has (a FastAPI handler, an MCP server, a notebook,
a test). The CLI is the one place in rootloop that calls ``asyncio.run``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rootloop import runner
from rootloop import topology as topology_mod
from rootloop.actions.once import Executor
from rootloop.context import DebugContext, RunStatus
from rootloop.events import Event
from rootloop.loop import Publisher, TestRunner
from rootloop.models import Finding, Outcome
from rootloop.models.nodes import Node, SkillCatalog
from rootloop.reasoning.base import Reasoner
from rootloop.runner import ReasonerKind
from rootloop.skills import registry
from rootloop.skills.base import CheckContext
from rootloop.sweep import sweep as sweep_nodes
from rootloop.topology import Topology

#: a map already loaded (``load_map``) or the path of its file
MapLike = Topology | str | os.PathLike[str]


@dataclass(frozen=True)
class Investigation:
    """How one investigation ended, and where to read more.

    ``status`` is the run's ending: ``healthy`` (fixed and verified), ``recovered`` (the
    symptoms cleared without a fix), ``not-reproduced``, ``paused`` (waiting for a human
    at ``gate``), ``escalated``, ``refused`` (production or policy), or ``running`` when
    the run was stopped before an end (its lease was taken over: resume it by ``run_id``).
    ``context`` is the whole debug context, as persisted at ``context_path``.
    """

    run_id: str
    status: RunStatus
    reason: str
    iterations: int
    #: each iteration's outcome, in order (None for one that did not finish)
    outcomes: tuple[Outcome | None, ...]
    context_path: Path
    #: the HTML report, when one was written
    report: Path | None
    #: the pull request's URL (or the PR body's path when the map has no repository)
    pr: str | None
    branch: str | None
    #: the gate a paused run waits at (approve it, then investigate again with ``run_id``)
    gate: str | None
    context: DebugContext

    @property
    def fixed(self) -> bool:
        """True only for a fix that cleared every entry symptom and held."""
        return self.status == "healthy"


def load_map(
    path: str | os.PathLike[str],
    *,
    env: dict[str, str] | None = None,
    skills: SkillCatalog | None = None,
) -> Topology:
    """Read and validate a service map (and the maps it includes).

    ``env`` replaces the process environment for ``${VAR}`` references (None: the
    process's own). ``skills`` finds each node's skill: the built-in registry with the
    installed ``rootloop.skills`` plugins unless another catalog is given (the loader
    itself has no default; this is the one place that picks it). Raises
    ``TopologyError`` naming the field and the fix.
    """
    return topology_mod.load(Path(path), env=env, skills=registry if skills is None else skills)


def _map(map_or_path: MapLike) -> Topology:
    return map_or_path if isinstance(map_or_path, Topology) else load_map(map_or_path)


async def sweep(
    map_or_path: MapLike,
    *,
    nodes: Iterable[str] | None = None,
    concurrency: int | None = None,
    on_finding: Callable[[Finding], None] | None = None,
) -> list[Finding]:
    """Check every node of the map at once (or only ``nodes``, by name); one finding each,
    in map order. A check that fails or times out is a finding (``unreachable``), never an
    exception. ``on_finding`` sees each finding as it arrives."""
    topo = _map(map_or_path)
    chosen: list[Node] = list(topo.nodes.values())
    if nodes is not None:
        wanted = set(nodes)
        unknown = wanted - set(topo.nodes)
        if unknown:
            from rootloop.errors import UserError

            raise UserError(f"no such node in the map: {', '.join(sorted(unknown))}")
        chosen = [n for n in chosen if n.name in wanted]

    def done(_node: Node, finding: Finding) -> None:
        if on_finding is not None:
            on_finding(finding)

    return await sweep_nodes(
        chosen,
        CheckContext(redactor=topo.redactor),
        concurrency=concurrency or topo.policy.concurrency,
        on_done=done,
    )


async def investigate(
    map_or_path: MapLike,
    *,
    reasoner: Reasoner | ReasonerKind = "auto",
    on_event: Callable[[Event], None] | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
    memory: bool = True,
    wait_lease: float = 0.0,
    executor: Executor | None = None,
    publisher: Publisher | None = None,
    tests: TestRunner | None = None,
) -> Investigation:
    """Investigate the map's service until it is healthy, or hand over to a human.

    sweep → reason → gate → act → verify → test → PR, under the lease of the service and
    environment (``LeaseHeld`` when another run holds it past ``wait_lease`` seconds).

    - ``reasoner``: ``"rules"``, ``"model"``, ``"hybrid"``, ``"auto"`` (hybrid when a model
      is configured, else rules), or any ``Reasoner`` (``rootloop.testing.ScriptedReasoner``).
    - ``on_event``: called with every event of the run (phases, findings, the diagnosis,
      gates, actions, verification); a sink that raises never stops the run.
    - ``state_dir``: where runs are kept (default: ``.rootloop/`` beside the map).
    - ``run_id``: resume that run (after a kill, or after a human approved its gate);
      a new run with that id when none is stored.
    - ``memory``: archive the run and recall past ones (the map's ``memory:`` block).
    - ``executor``, ``publisher``, ``tests``: replace the real side effects, the pull
      request and the load/UI tests (``rootloop.testing`` has recording ones). The gates
      run either way.
    """
    topo = _map(map_or_path)
    session = runner.Session.of(
        topo, Path(state_dir) if state_dir is not None else None, with_memory=memory
    )
    chosen = reasoner if not isinstance(reasoner, str) else session.reasoner(reasoner, topo.file)
    ctx = session.context(run_id)
    sinks = [on_event] if on_event is not None else []
    ctx = await runner.run(
        session,
        ctx,
        sinks,
        chosen,
        wait_lease=wait_lease,
        executor=executor,
        publisher=publisher,
        tests=tests,
    )
    run_dir = session.store.run_dir(ctx.run_id)
    report = run_dir / "report.html"
    gate = ctx.pending_gate.gate if ctx.status == "paused" and ctx.pending_gate else None
    return Investigation(
        run_id=ctx.run_id,
        status=ctx.status,
        reason=ctx.status_reason,
        iterations=ctx.iteration,
        outcomes=tuple(h.outcome for h in ctx.history),
        context_path=run_dir / "context.json",
        report=report if report.exists() else None,
        pr=ctx.pr,
        branch=ctx.branch,
        gate=gate,
        context=ctx,
    )


__all__ = ["Investigation", "MapLike", "investigate", "load_map", "sweep"]
