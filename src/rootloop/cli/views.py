"""Small rich renderables shared by the commands."""

from __future__ import annotations

from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from rootloop.models import Finding, Status
from rootloop.models.nodes import Node

STYLE = {
    Status.OK: "green",
    Status.UNKNOWN: "magenta",
    Status.DEGRADED: "yellow",
    Status.UNREACHABLE: "red",
    Status.CRITICAL: "bold red",
}
ICON = {
    Status.OK: "●",
    Status.UNKNOWN: "?",
    Status.DEGRADED: "▲",
    Status.UNREACHABLE: "✕",
    Status.CRITICAL: "✖",
}


def status_text(status: Status) -> Text:
    return Text(f"{ICON[status]} {status.value}", style=STYLE[status])


def sweep_table(nodes: list[Node], done: dict[str, Finding], title: str = "") -> Table:
    table = Table(title=title or None, expand=False, show_lines=False, pad_edge=False)
    table.add_column("node", style="bold", no_wrap=True)
    table.add_column("role", style="dim", no_wrap=True)
    table.add_column("skill", style="cyan", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("summary", overflow="fold", max_width=80)
    table.add_column("time", justify="right", style="dim", no_wrap=True)
    for node in nodes:
        f = done.get(node.name)
        if f is None:
            table.add_row(
                node.name, node.role, node.skill, Spinner("dots", text="checking"), "", ""
            )
        else:
            table.add_row(
                node.name,
                node.role,
                node.skill,
                status_text(f.status),
                f.summary,
                f"{f.duration_ms:,.0f} ms",
            )
    return table
