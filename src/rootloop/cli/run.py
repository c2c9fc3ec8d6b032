"""``rootloop run | status | approve | resume``: investigations on persisted state."""

from __future__ import annotations

import asyncio
import getpass
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rootloop import runner
from rootloop.actions.gates import approval_key
from rootloop.approvals import decide
from rootloop.context import ContextStore, DebugContext
from rootloop.errors import StateError, UserError
from rootloop.lease import LeaseHeld
from rootloop.report import TerminalView
from rootloop.state import state_dir

console = Console()

MapOption = Annotated[Path, typer.Option("--topology", "-t", help="The service map.")]
ReasonerOption = Annotated[
    str,
    typer.Option(
        "--reasoner",
        help="rules | model | hybrid | auto (hybrid when a model is configured, else rules).",
    ),
]
StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where runs are kept (default: .rootloop/ of the project, or $ROOTLOOP_STATE_DIR).",
    ),
]

#: how a run ended, as the process's exit code (also in ``rootloop run --help``)
EXIT = {
    "healthy": 0,  # fixed and verified: every entry symptom cleared because of an action
    "failed": 1,
    "running": 1,
    "paused": 3,  # waiting for a human at a gate
    "escalated": 4,  # no verified fix: a human takes over (ranked suspects in the report)
    "refused": 5,  # production: rootloop changed nothing
    "recovered": 7,  # the symptoms cleared without a fix: no action credited
    "not-reproduced": 8,  # nothing wrong found, the complaint did not reproduce
}
#: another run holds the lease of this service and environment: nothing was done
EXIT_LEASE_HELD = 6

WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        help="When another run is investigating the same service and environment, wait up "
        "to this many seconds for it to finish (default: exit 6 at once).",
    ),
]


def _store(state: Path | None) -> ContextStore:
    return ContextStore(state or state_dir())


def investigate(
    topology_file: Path,
    reasoner: str,
    state: Path | None,
    ctx: DebugContext | None = None,
    wait: float = 0.0,
) -> DebugContext:
    session = runner.Session.open(topology_file, state)
    ctx = ctx or session.new_context(topology_file)
    chosen = session.reasoner(reasoner, topology_file)  # type: ignore[arg-type]
    view = TerminalView(console)
    try:
        ctx = asyncio.run(runner.run(session, ctx, [view], chosen, wait_lease=wait))
    except LeaseHeld as held:
        console.print(f"[yellow]not started[/]: {held}")
        raise typer.Exit(EXIT_LEASE_HELD) from None
    run_dir = session.store.run_dir(ctx.run_id)
    console.print()
    console.print(
        f"[bold]run[/] {ctx.run_id} · status [bold]{ctx.status}[/] · "
        f"{ctx.iteration} iteration(s) · {ctx.status_reason}"
    )
    if (run_dir / "report.html").exists():
        console.print(f"report  {run_dir / 'report.html'}")
    if ctx.pr:
        console.print(f"PR      {ctx.pr}" + (f"  (branch {ctx.branch})" if ctx.branch else ""))
    if ctx.status == "paused" and ctx.pending_gate:
        console.print(
            f"[yellow]paused[/] at gate '{ctx.pending_gate.gate}': approve with "
            f"[bold]rootloop approve {ctx.run_id} --gate {ctx.pending_gate.gate}[/]"
        )
    return ctx


def run(
    topology_file: MapOption = Path("rootloop.yaml"),
    reasoner: ReasonerOption = "auto",
    state: StateOption = None,
    wait: WaitOption = 0.0,
) -> None:
    """Investigate until healthy: sweep → reason → gate → act → verify → test → PR.

    One run per service and environment at a time: exits 6 when another holds it.

    Exit codes:
    0 fixed and verified · 1 failed · 3 paused at a gate
    4 escalated, no verified fix · 5 refused (production) · 6 another run holds the lease
    7 recovered without a fix (no action credited) · 8 not reproduced"""
    ctx = investigate(topology_file, reasoner, state, wait=wait)
    raise typer.Exit(EXIT.get(ctx.status, 1))


def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue.")],
    reasoner: ReasonerOption = "auto",
    state: StateOption = None,
    wait: WaitOption = 0.0,
) -> None:
    """Continue a run that was killed, or that a human approved. No action runs twice."""
    store = _store(state)
    ctx = store.load(run_id)
    if not ctx.topology_file:
        raise StateError(f"run {run_id} does not record its map; cannot resume it")
    gate, entry = ctx.pending_gate, ctx.current
    approved = (
        ctx.status == "paused"
        and gate is not None
        and entry is not None
        and entry.action_detail is not None
        and approval_key(gate.gate, entry.action_detail) in ctx.approvals
    )
    map_file = ctx.topology_file
    if not map_file:
        raise UserError(f"run {run_id} records no map file, so it cannot be resumed")
    if ctx.publish_pending and not approved:
        # killed between its ending and its PR: resume into publishing, nothing else
        ctx = investigate(Path(map_file), reasoner, store.root, ctx, wait)
        raise typer.Exit(EXIT.get(ctx.status, 1))
    if ctx.status in ("healthy", "recovered", "not-reproduced"):
        console.print(f"run {run_id} already ended {ctx.status} and is published")
        return
    if ctx.status == "paused" and gate is not None and not approved:
        raise UserError(f"run {run_id} waits at gate '{gate.gate}': {gate.reason}")
    ctx.status = "running"  # saved by the run once it holds the lease, not before
    ctx = investigate(Path(map_file), reasoner, store.root, ctx, wait)
    raise typer.Exit(EXIT.get(ctx.status, 1))


def approve(
    run_id: Annotated[str, typer.Argument(help="The paused run.")],
    gate: Annotated[str, typer.Option("--gate", help="The gate to approve, e.g. schema.")],
    no_resume: Annotated[
        bool, typer.Option("--no-resume", help="Record the approval only.")
    ] = False,
    state: StateOption = None,
) -> None:
    """Approve the action a run is paused on (e.g. a schema migration), then resume it."""
    store = _store(state)
    ctx = decide(
        store,
        run_id,
        gate,
        "approved",
        who=getpass.getuser(),
        via="cli",
        origin=socket.gethostname(),
    )
    entry = ctx.current
    assert entry is not None
    console.print(f"[green]approved[/] {entry.action}")
    if not no_resume:
        resume(run_id, "auto", store.root)


def status(
    run_id: Annotated[str | None, typer.Argument(help="A run (default: all).")] = None,
    state: StateOption = None,
) -> None:
    """Show runs, or one run's debug history."""
    store = _store(state)
    if run_id is None:
        table = Table("run", "service", "env", "status", "iterations", "reason")
        for c in store.list()[:20]:
            table.add_row(
                c.run_id, c.service, c.environment, c.status, str(c.iteration), c.status_reason[:70]
            )
        console.print(table)
        return
    ctx = store.load(run_id)
    console.print(
        f"[bold]{ctx.run_id}[/] {ctx.service} ({ctx.environment}) · "
        f"[bold]{ctx.status}[/] · {ctx.status_reason}"
    )
    table = Table("#", "diagnosis", "action", "commit", "CI", "result", "phase")
    for h in ctx.history:
        table.add_row(
            str(h.iteration), h.diagnosis, h.action, h.commit or "", h.gha or "", h.result, h.phase
        )
    console.print(table)
    if ctx.pr:
        console.print(f"PR {ctx.pr}")
