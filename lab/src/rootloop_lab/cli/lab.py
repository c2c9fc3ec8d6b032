"""``rootloop lab``: the local lab — start it, stop it, look at it, break it."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rootloop.errors import RootloopError
from rootloop_lab import Lab, packs

app = typer.Typer(
    help="A real small microservice system on loopback, with faults to inject.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

RootOption = Annotated[
    Path | None,
    typer.Option("--root", help="The lab directory (default: <state dir>/lab)."),
]


def _fail(exc: RootloopError) -> None:
    err.print(f"[red]{type(exc).__name__}[/red]: {exc}")
    raise typer.Exit(1)


@app.command()
def up(root: RootOption = None) -> None:
    """Start the lab in the background; return once every component is healthy."""
    lab = Lab(root)
    try:
        with console.status("starting the lab…"):
            state = lab.up()
    except RootloopError as exc:
        _fail(exc)
        return
    took = state.ready_at - state.started_at
    console.print(f"lab ready in {took:.1f}s — map: {lab.map_file}")
    console.print(f"frontend: {state.url('frontend-app')}/   gateway: {state.url('api-gateway')}")
    console.print('point your shell at it: [bold]eval "$(rootloop lab env)"[/bold]')


@app.command()
def down(root: RootOption = None) -> None:
    """Stop every lab process."""
    Lab(root).down()
    console.print("lab stopped")


@app.command()
def status(root: RootOption = None) -> None:
    """Each component of the lab and whether it is up."""
    st = Lab(root).status()
    if not st.running:
        console.print(f"the lab in {st.root} is not running ({st.status})")
        raise typer.Exit(1)
    table = Table("component", "kind", "ok", "detail")
    for c in st.components:
        table.add_row(c.name, c.kind, "[green]yes[/green]" if c.ok else "[red]no[/red]", c.detail)
    console.print(table)
    if not st.healthy:
        raise typer.Exit(1)


@app.command()
def inject(
    scenario: Annotated[str, typer.Argument(help="A scenario: see `rootloop lab scenarios`.")],
    root: RootOption = None,
) -> None:
    """Apply a scenario's real fault."""
    lab = Lab(root)
    try:
        facts = lab.inject(scenario)
    except RootloopError as exc:
        _fail(exc)
        return
    sc = packs.get(scenario).truth
    console.print(f"injected [bold]{scenario}[/bold]: {sc.description}")
    if facts.get("map"):
        console.print(f"use the production map: {facts['map']}")
    else:
        console.print(f"investigate with: rootloop run -t {lab.map_for(scenario)}")


@app.command()
def env(root: RootOption = None) -> None:
    """Print 'export …' lines that point AWS clients (and rootloop) at the lab."""
    try:
        values = Lab(root).env()
    except RootloopError as exc:
        _fail(exc)
        return
    for k, v in values.items():
        typer.echo(f"export {k}={shlex.quote(v)}")


@app.command()
def scenarios() -> None:
    """Every installed pack's scenarios and their ground truth."""
    try:
        known = packs.catalogue()
    except RootloopError as exc:
        _fail(exc)
        return
    table = Table("scenario", "pack", "root cause", "category", "fixable", "gate", "fix")
    for p in known.values():
        s = p.truth
        table.add_row(
            s.name,
            p.pack,
            s.root_cause,
            s.category,
            "yes" if s.fixable else "no",
            s.gate or "",
            s.fix,
        )
    console.print(table)
    console.print(f"{len(known)} scenarios in {len(packs.packs())} pack(s)")
