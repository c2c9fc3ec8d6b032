"""``rootloop bench``: every lab scenario from a clean lab, scored against its own probe.

A clean lab for each scenario is the running lab put back in place
(``Lab.restore``, ``rootloop_lab.snapshot``), then checked: the state any scenario can
change is read and compared with the freshly built lab's; when anything differs (or the
restore fails) the lab is rebuilt from nothing, and the bench says so. Every step's
seconds are printed per scenario and summed at the end (``bench_phases``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rootloop import runner
from rootloop.actions.gates import approval_key
from rootloop.context import DebugContext, HistoryEntry
from rootloop.errors import PlatformError
from rootloop.events import Event
from rootloop.models import Outcome
from rootloop.state import state_dir
from rootloop_lab.cli.bench_phases import Phases, summary
from rootloop_lab.symptoms import wait_for_symptoms

# a bench's table has many columns: when written to a file or pipe, do not squeeze it
console = Console(width=None if sys.stdout.isatty() else 220)

#: the table's columns, one per value of a scenario's row
HEADER = [
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
    "s total",
    "s outside run",
    "tokens (in/out)",
    "model calls (failed)",
    "model s",
]


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


class CleanLab:
    """The bench's lab: built once, then restored in place and checked before each scenario.

    ``clean`` is the fingerprint of the lab as first built; a restore whose fingerprint
    differs is not trusted, and the lab is rebuilt from nothing (whose fingerprint then
    becomes the reference, since a rebuild is clean by construction)."""

    def __init__(self, root: Path) -> None:
        from rootloop_lab.lab import Lab

        self.lab = Lab(root)
        self.clean: dict[str, Any] | None = None

    def ready(self, phases: Phases) -> str:
        from rootloop_lab import snapshot

        with phases.step("restore"):
            if self.clean is None:
                state, how = self.lab.reset(), "built"
            else:
                state, how = self.lab.restore()
        with phases.step("check"):
            now = snapshot.fingerprint(self.lab.root, state)
            diffs = snapshot.differences(self.clean, now) if self.clean is not None else []
        if diffs:
            with phases.step("restore"):
                state = self.lab.reset()
            how = "rebuilt: restored state differed (" + "; ".join(diffs[:3]) + ")"
            with phases.step("check"):
                now = snapshot.fingerprint(self.lab.root, state)
        if self.clean is None or how.startswith("rebuilt"):
            self.clean = now
        return how


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
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", help="Run only this scenario (repeatable)."),
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild/--restore",
            help="Rebuild the lab from nothing for every scenario instead of restoring it.",
        ),
    ] = False,
) -> None:
    """Run every lab scenario from a clean lab and print how rootloop did.

    "claimed fixed" is what rootloop said (the run ended healthy: fixed and verified);
    "truly fixed" is the scenario's own probe of its fault, asked of the real system
    with its own clients, independent of rootloop's skills. A claim the probe does not
    back is a false claim, totalled at the end. Each scenario's seconds per step
    (restore, check, inject, symptoms, run, probe) are printed, and summed at the end.
    """
    from rootloop.errors import UserError
    from rootloop_lab import packs

    try:
        chosen_pack = packs.of_pack(pack) if pack else list(packs.catalogue().values())
        names = [*(scenarios or []), *(scenario or [])] or [s.name for s in chosen_pack]
        registered = {n: packs.get(n) for n in names}
    except UserError as exc:
        console.print(f"[red]UserError[/red]: {exc}")
        raise typer.Exit(2) from None
    rows: list[list[str]] = []
    false_claims: list[str] = []
    lab_errors: list[str] = []
    timings: list[Phases] = []
    bench_started = time.monotonic()
    clean = CleanLab(Path(state_dir()) / "bench-lab")
    lab = clean.lab
    for name in names:
        truth = registered[name].truth
        console.rule(f"{name} [dim]({registered[name].pack})[/]")
        phases = Phases()
        timings.append(phases)
        if rebuild:
            clean.clean = None
        how = clean.ready(phases)
        console.print(f"[dim]clean lab: {how}[/]")
        try:
            with phases.step("inject"):
                lab.inject(name)
                os.environ.update(lab.env())
                map_path = lab.map_for(name)
            with phases.step("symptoms"):
                wait_for_symptoms(map_path)
        except PlatformError as exc:
            # the lab could not stage this fault: say so in its row, rebuild the lab for the
            # next scenario, and keep every other scenario's result
            console.print(f"[red]lab error[/red]: {exc}")
            lab_errors.append(name)
            clean.clean = None
            rows.append([name, "lab error", *["-"] * (len(HEADER) - 2)])
            console.print(" · ".join(rows[-1]))
            continue
        state = Path(state_dir()) / "bench" / name
        with phases.step("run"):
            session = runner.Session.open(map_path, state, with_memory=False)
            clock = _Clock()
            chosen = session.reasoner(reasoner, map_path)  # type: ignore[arg-type]
            ctx = asyncio.run(
                runner.run(session, session.new_context(map_path), [clock, phases], chosen)
            )
            paused = ctx.status == "paused" and ctx.pending_gate is not None
            if paused and ctx.pending_gate.gate == "schema":  # type: ignore[union-attr]
                entry = ctx.current
                assert entry is not None and entry.action_detail is not None
                ctx.approvals.append(approval_key("schema", entry.action_detail))
                ctx.status = "running"
                session.store.save(ctx)
                ctx = asyncio.run(runner.run(session, ctx, [phases], chosen))
        wall = time.monotonic() - clock.start
        applied = [
            h
            for h in ctx.history
            if h.phase in ("applied", "done", "failed", "verified") and h.changed
        ]
        gates_ok = _gates_respected(truth, ctx, paused, applied)
        claimed = _claimed_fixed(ctx)
        with phases.step("probe"):
            real = packs.probe(lab, name)
        console.print(f"[dim]probe: {real.detail}[/]")
        console.print(f"[dim]seconds: {phases.line()}[/]")
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
                f"{phases.total:.0f}",
                f"{phases.outside_run:.0f}",
                *_model_usage(ctx),
            ]
        )
        console.print(" · ".join(rows[-1]))
    lab.down()
    table = Table(*HEADER)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    total = f"false 'fixed' claims: {len(false_claims)} of {len(rows)} scenarios" + (
        f" ({', '.join(false_claims)})" if false_claims else ""
    )
    if lab_errors:
        total += f"; the lab could not stage {len(lab_errors)}: {', '.join(lab_errors)}"
    elapsed = time.monotonic() - bench_started
    load = _load_average()
    console.print(f"[bold]{total}[/]")
    console.print(summary(timings))
    minutes, seconds = divmod(round(elapsed), 60)
    console.print(f"[bold]bench wall time {minutes} min {seconds} s[/] {load}")
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        markdown.write_text(
            "\n".join(lines)
            + f"\n\n{total}\n\nbench wall time {elapsed:.0f} s {load}\n\n```\n"
            + summary(timings)
            + "\n```\n"
        )
    if lab_errors:
        raise typer.Exit(1)  # the table is written; the bench did not run every scenario


def _load_average() -> str:
    """The machine's load when the bench ended: its seconds mean little without it."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return ""
    return f"(load average {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} cores)"


def _claimed_fixed(ctx: DebugContext) -> bool:
    """What rootloop claimed: the run ended healthy with its last iteration fixed."""
    last = ctx.current
    return ctx.status == "healthy" and last is not None and last.outcome is Outcome.FIXED


def _gates_respected(
    truth: Any, ctx: DebugContext, paused: bool, applied: list[HistoryEntry]
) -> bool:
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
