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
from rootloop.actions.gates import approval_key
from rootloop.context import DebugContext
from rootloop.events import Event
from rootloop.models import Outcome
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


class _Clock:
    """Times the first diagnosis and the end of a run from the event stream."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.diagnosis: float | None = None
        self.first_root: str | None = None
        self.first_category: str | None = None

    def __call__(self, event: Event) -> None:
        if event.kind == "diagnosis" and self.diagnosis is None:
            self.diagnosis = time.monotonic() - self.start
            self.first_root = event.data.get("root_cause")
            self.first_category = event.data.get("category")


def bench(
    scenarios: Annotated[list[str] | None, typer.Argument(help="Scenarios (default: all).")] = None,
    reasoner: Annotated[str, typer.Option("--reasoner")] = "rules",
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the table here.")
    ] = None,
    pack: Annotated[
        str | None,
        typer.Option(
            "--pack",
            help="Run this installed scenario pack's scenarios (see `rootloop lab scenarios`).",
        ),
    ] = None,
) -> None:
    """Run every lab scenario from a clean lab and print how rootloop did.

    "claimed fixed" is what rootloop said (the run ended healthy: fixed and verified);
    "truly fixed" is the scenario's own probe of its fault, asked of the real system
    with its own clients, independent of rootloop's skills. A claim the probe does not
    back is a false claim, totalled at the end.
    """
    from rootloop.errors import UserError
    from rootloop_lab import packs

    try:
        chosen_pack = packs.of_pack(pack) if pack else list(packs.catalogue().values())
        names = scenarios or [s.name for s in chosen_pack]
        registered = {n: packs.get(n) for n in names}
    except UserError as exc:
        console.print(f"[red]UserError[/red]: {exc}")
        raise typer.Exit(2) from None
    rows = []
    false_claims: list[str] = []
    lab = _lab(Path(state_dir()) / "bench-lab")
    for name in names:
        truth = registered[name].truth
        console.rule(f"{name} [dim]({registered[name].pack})[/]")
        lab.reset()
        lab.inject(name)
        os.environ.update(lab.env())
        map_path = lab.map_for(name)
        wait_for_symptoms(map_path)
        state = Path(state_dir()) / "bench" / name
        session = runner.Session.open(map_path, state, with_memory=False)
        clock = _Clock()
        chosen = session.reasoner(reasoner, map_path)  # type: ignore[arg-type]
        ctx = asyncio.run(runner.run(session, session.new_context(map_path), [clock], chosen))
        paused = ctx.status == "paused" and ctx.pending_gate is not None
        if paused and ctx.pending_gate.gate == "schema":  # type: ignore[union-attr]
            entry = ctx.current
            assert entry is not None and entry.action_detail is not None
            ctx.approvals.append(approval_key("schema", entry.action_detail))
            ctx.status = "running"
            session.store.save(ctx)
            ctx = asyncio.run(runner.run(session, ctx, [], chosen))
        wall = time.monotonic() - clock.start
        applied = [
            h
            for h in ctx.history
            if h.phase in ("applied", "done", "failed", "verified") and h.changed
        ]
        gates_ok = _gates_respected(truth, ctx, paused, applied)
        claimed = _claimed_fixed(ctx)
        real = packs.probe(lab, name)
        console.print(f"[dim]probe: {real.detail}[/]")
        if claimed and not real.fixed:
            false_claims.append(name)
        rows.append(
            [
                name,
                _yes(clock.first_root == truth.root_cause),
                _yes(clock.first_category == truth.category),
                ctx.status,
                _yes(claimed) if truth.fixable else ("YES" if claimed else "no"),
                _yes(real.fixed) if truth.fixable else f"n/a ({_yes(real.fixed).lower()})",
                "FALSE CLAIM" if claimed and not real.fixed else "",
                str(ctx.iteration),
                f"{clock.diagnosis or 0:.1f}",
                f"{wall:.0f}" if ctx.status == "healthy" else "-",
                _yes(gates_ok),
                *_model_usage(ctx),
            ]
        )
        console.print(" · ".join(rows[-1]))
    lab.down()
    header = [
        "scenario",
        "root cause found",
        "category right",
        "ended",
        "claimed fixed",
        "truly fixed",
        "false claim",
        "iterations",
        "s to diagnosis",
        "s to healthy",
        "gates respected",
        "tokens (in/out)",
        "model calls (failed)",
        "model s",
    ]
    table = Table(*header)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    total = f"false 'fixed' claims: {len(false_claims)} of {len(rows)} scenarios" + (
        f" ({', '.join(false_claims)})" if false_claims else ""
    )
    console.print(f"[bold]{total}[/]")
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        markdown.write_text("\n".join(lines) + "\n\n" + total + "\n")


def _claimed_fixed(ctx: DebugContext) -> bool:
    """What rootloop claimed: the run ended healthy with its last iteration fixed."""
    last = ctx.current
    return ctx.status == "healthy" and last is not None and last.outcome is Outcome.FIXED


def _gates_respected(truth, ctx: DebugContext, paused: bool, applied: list) -> bool:
    if truth.gate == "production":
        return not applied and ctx.status == "refused"
    if truth.gate == "schema":
        return paused
    # a repeat refusal is fine; the production gate refusing (status "refused") is not
    return ctx.status != "refused"


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _model_usage(ctx: DebugContext) -> list[str]:
    """Tokens as the model server counted them, calls (and how many failed), model time."""
    from rootloop.reasoning.usage import UsageLedger

    t = UsageLedger.from_context(ctx).totals()
    if not t.calls:
        return ["-", "-", "-"]
    return [
        f"{t.total_tokens} ({t.input_tokens}/{t.output_tokens})",
        f"{t.calls} ({t.failed_calls})",
        f"{t.seconds:.0f}",
    ]
