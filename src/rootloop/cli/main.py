"""``rootloop``: point it at a service map; it finds the root cause and fixes it safely."""

from __future__ import annotations

import asyncio
import json
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from rootloop import __version__, topology
from rootloop.errors import RootloopError
from rootloop.models import Finding, Status, worst
from rootloop.models.nodes import Node
from rootloop.skills import registry
from rootloop.skills.base import CheckContext
from rootloop.sweep import sweep as run_sweep

from .views import STYLE, sweep_table

app = typer.Typer(
    name="rootloop",
    help=(
        "Autonomous debugging for microservices: sweep every dependency of a service in "
        "parallel, name the root cause, fix it in a lower environment, verify, and open a "
        "pull request — never merging, never touching production."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

MapOption = Annotated[
    Path,
    typer.Option("--topology", "-t", help="The service map (YAML or JSON).", show_default=True),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"rootloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """rootloop: sweep → reason → fix → verify → PR."""


@app.command()
def validate(topology_file: MapOption = Path("rootloop.yaml")) -> None:
    """Check a map: schema, skills, env vars, cycles. Prints the graph it understood."""
    topo = topology.load(topology_file, skills=registry)
    from rootloop.reasoning.model import load_model_config

    load_model_config(topology_file)  # the 'model:' block, as 'run' reads it
    console.print(
        f"[green]✓[/] {topology_file}: service [bold]{topo.service}[/] "
        f"({topo.environment}), {len(topo.nodes)} checks over "
        f"{topo.graph.number_of_nodes()} components, "
        f"{len(topo.files)} map file(s)"
    )
    refusal = topo.environment_refusal()
    if refusal:
        console.print(f"[yellow]diagnose only[/]: {escape(refusal)}")
    else:
        level = topo.policy.autonomy.default
        console.print(f"acts in [bold]{escape(topo.environment)}[/] (autonomy: {level})")
    for caller, callee in sorted(topo.graph.edges):
        console.print(f"  {caller} → {callee}", style="dim")


@app.command()
def sweep(
    topology_file: MapOption = Path("rootloop.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print findings as JSON.")] = False,
    concurrency: Annotated[int | None, typer.Option(help="Checks in flight at once.")] = None,
) -> None:
    """Check every node of the map at once and print what each one looks like.

    Exits 1 when any node is critical, so it can gate a deploy script.
    """
    topo = topology.load(topology_file, skills=registry)
    nodes = list(topo.nodes.values())
    limit = concurrency or topo.policy.concurrency
    ctx = CheckContext(redactor=topo.redactor)
    if as_json:
        findings = asyncio.run(run_sweep(nodes, ctx, concurrency=limit))
        print(json.dumps([f.model_dump(mode="json") for f in findings], indent=2))
    else:
        findings = _live_sweep(nodes, ctx, limit, title=f"{topo.service} · {topo.environment}")
        overall = worst([f.status for f in findings])
        counts = {s: sum(f.status is s for f in findings) for s in Status}
        parts = [f"[{STYLE[s]}]{n} {s.value}[/]" for s, n in counts.items() if n]
        console.print(f"overall [{STYLE[overall]}]{overall.value}[/] · " + ", ".join(parts))
    if any(f.status is Status.CRITICAL for f in findings):
        raise typer.Exit(1)


def _live_sweep(nodes: list[Node], ctx: CheckContext, limit: int, title: str) -> list[Finding]:
    done: dict[str, Finding] = {}
    with Live(
        sweep_table(nodes, done, title),
        console=console,
        refresh_per_second=12,
        transient=not console.is_terminal,
    ) as live:

        def on_done(node: Node, finding: Finding) -> None:
            done[node.name] = finding
            live.update(sweep_table(nodes, done, title))

        findings = asyncio.run(run_sweep(nodes, ctx, concurrency=limit, on_done=on_done))
    if not console.is_terminal:
        console.print(sweep_table(nodes, done, title))
    return findings


def _wire() -> None:
    """Commands that live in their own modules; imported here so --help lists them."""
    from . import gate as gate_cmds
    from . import history as history_cmds
    from . import mcp as mcp_cmds
    from . import run as run_cmds
    from . import serve as serve_cmds

    app.command("run")(run_cmds.run)
    app.command("status")(run_cmds.status)
    app.command("approve")(run_cmds.approve)
    app.command("resume")(run_cmds.resume)
    app.add_typer(history_cmds.app, name="history")
    app.command("note")(history_cmds.note_command)
    app.command("mcp")(mcp_cmds.mcp_command)
    app.command("gate")(gate_cmds.gate)
    app.command("serve")(serve_cmds.serve)


PLUGIN_GROUP = "rootloop.cli_plugins"


def load_plugins(target: typer.Typer) -> None:
    """Commands that other distributions add (``rootloop-lab`` adds ``lab``, ``demo``,
    ``bench``): each entry point of ``PLUGIN_GROUP`` names a ``register(app)`` callable.

    The harness never imports those distributions; it only finds them through their
    package metadata. A plugin that fails to load costs its own commands and a warning,
    never the harness's commands.
    """
    seen: set[str] = set()
    for ep in entry_points(group=PLUGIN_GROUP):
        if ep.name in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(ep.name)
        try:
            ep.load()(target)
        except Exception as exc:
            err.print(f"[yellow]warning[/]: CLI plugin {ep.name!r} ({ep.value}) not loaded: {exc}")


_wire()
load_plugins(app)


def main() -> None:
    from rootloop.redact import install_output_redaction

    install_output_redaction()  # every line the CLI prints or logs passes the boundary
    try:
        app()
    except RootloopError as exc:
        err.print(f"[bold red]{type(exc).__name__}[/]: {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # the last resort: a short line for the user, the trace on disk
        where = write_trace(exc)
        err.print(
            f"[bold red]internal error[/]: {type(exc).__name__}: {escape(_short(exc))}\n"
            f"This is a bug in rootloop, not in your input; the full trace is in {where}",
            highlight=False,
        )
        sys.exit(70)


def _short(exc: BaseException) -> str:
    from rootloop.redact import Redactor

    text = " ".join(str(exc).split())
    return Redactor().text(text[:300] + ("…" if len(text) > 300 else ""))


def write_trace(exc: BaseException) -> Path:
    """The traceback, redacted, in a file of its own (never on the user's terminal)."""
    import tempfile
    import time
    import traceback

    from rootloop.redact import Redactor

    text = "".join(traceback.format_exception(exc))
    path = Path(tempfile.gettempdir()) / f"rootloop-error-{time.strftime('%Y%m%dT%H%M%S')}.log"
    try:
        path.write_text(Redactor().text(text), encoding="utf-8")
    except OSError:
        return Path("(could not be written)")
    return path


if __name__ == "__main__":
    main()
