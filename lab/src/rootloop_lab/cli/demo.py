"""``rootloop demo`` and ``rootloop bench``: the whole loop on the local lab."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rootloop import runner
from rootloop.context import DebugContext
from rootloop.report import TerminalView
from rootloop.state import state_dir
from rootloop_lab.symptoms import wait_for_symptoms

console = Console()


def _lab(root: Path | None):
    from rootloop_lab import Lab

    return Lab(root)


def demo(
    scenario: Annotated[str, typer.Argument(help="The fault to inject.")] = "oom-batch",
    keep: Annotated[
        bool, typer.Option("--keep/--down", help="Leave the lab running after the demo.")
    ] = True,
    reasoner: Annotated[str, typer.Option("--reasoner")] = "auto",
) -> None:
    """Start the local lab, inject a real fault, and watch rootloop find and fix it."""
    from rootloop_lab.scenarios import get

    truth = get(scenario)
    lab = _lab(None)
    console.rule(f"[bold]rootloop demo[/] · {scenario}")
    console.print(f"[dim]{truth.description}[/]")
    started = time.monotonic()
    with console.status("starting the lab (PostgreSQL, Redis, AWS emulator, services, CI)…"):
        lab.up()
    console.print(f"lab up in {time.monotonic() - started:.1f}s: {lab.root}")
    with console.status(f"injecting {scenario}…"):
        facts = lab.inject(scenario)
    console.print(f"fault injected: {', '.join(f'{k}={v}' for k, v in facts.items()) or 'ok'}")
    os.environ.update(lab.env())
    map_path = lab.map_for(scenario)
    with console.status("waiting for the fault to show (the page to the on-call engineer)…"):
        waited = wait_for_symptoms(map_path)
    console.print(f"symptoms visible after {waited:.0f}s; rootloop takes over")
    session = runner.Session.open(map_path, state_dir())
    ctx = session.new_context(map_path)
    chosen = session.reasoner(reasoner, map_path)  # type: ignore[arg-type]
    ctx = asyncio.run(runner.run(session, ctx, [TerminalView(console)], chosen))
    _summary(session, ctx, time.monotonic() - started)
    if not keep:
        lab.down()
    if ctx.status != "healthy" and truth.fixable and truth.gate is None:
        raise typer.Exit(1)


def _summary(session: runner.Session, ctx: DebugContext, seconds: float) -> None:
    run_dir = session.store.run_dir(ctx.run_id)
    console.rule("result")
    console.print(
        f"status [bold]{ctx.status}[/] after {ctx.iteration} iteration(s) "
        f"in {seconds:.0f}s — {ctx.status_reason}"
    )
    table = Table("#", "diagnosis", "action", "commit", "CI", "result")
    for h in ctx.history:
        table.add_row(
            str(h.iteration), h.diagnosis, h.action, h.commit or "", h.gha or "", h.result
        )
    console.print(table)
    console.print(f"debug context  {run_dir / 'context.json'}")
    console.print(f"HTML report    {run_dir / 'report.html'}")
    console.print(f"PR body        {run_dir / 'pr.md'}")
    if ctx.pr:
        console.print(f"pull request   {ctx.pr} (branch {ctx.branch})")
    if ctx.pending_gate:
        console.print(
            f"[yellow]waiting for a human:[/] rootloop approve {ctx.run_id} "
            f"--gate {ctx.pending_gate.gate}"
        )
