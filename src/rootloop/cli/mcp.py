"""``rootloop mcp``: serve rootloop's tools to MCP clients (Claude Code, Claude Desktop, …).

The lead wires it in ``rootloop.cli.main._wire``::

    from . import mcp as mcp_cmds
    app.command("mcp")(mcp_cmds.mcp_command)

It also runs on its own: ``python -m rootloop.cli.mcp -t rootloop.yaml``.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Transport(StrEnum):
    stdio = "stdio"
    http = "http"


def mcp_command(
    topology_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--topology",
            "-t",
            help="Map(s) the tools work on; repeat for several. The first is the default. "
            "When given, clients can only name these maps.",
        ),
    ] = None,
    transport: Annotated[
        Transport, typer.Option("--transport", help="stdio (launched by the client) or http.")
    ] = Transport.stdio,
    host: Annotated[str, typer.Option("--host", help="HTTP: address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="HTTP: port to bind.")] = 8765,
    allow_actions: Annotated[
        bool,
        typer.Option(
            "--allow-actions",
            help="Also offer tools that act (apply_action, run_investigation); every gate "
            "still applies. Off by default: the server is read-only.",
        ),
    ] = False,
    state: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Where runs are kept (default: as 'rootloop run')."),
    ] = None,
) -> None:
    """Serve sweep, check_node, diagnose, get_debug_context, get_report (and search_history)
    as MCP tools, over stdio or streamable HTTP."""
    from rootloop.mcpserver import ServerConfig, build_server

    config = ServerConfig(
        maps=list(topology_files or []), state_root=state, allow_actions=allow_actions
    )
    server = build_server(config)
    if transport is Transport.stdio:
        server.run("stdio")  # stdout carries the protocol: nothing else may print there
        return
    if host not in LOOPBACK:
        err.print(
            f"[yellow]warning[/]: serving on {host} without authentication; anyone who reaches "
            "it can read your maps' findings"
            + (" and act through the gates" if allow_actions else "")
        )
    mode = "read-write (gated)" if allow_actions else "read-only"
    err.print(f"rootloop MCP server ({mode}) on http://{host}:{port}/mcp")
    server.run("streamable-http", host=host, port=port)


def main() -> None:
    """Run the command alone (before it is wired into ``rootloop``)."""
    from rootloop.errors import RootloopError

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(mcp_command)
    try:
        app()
    except RootloopError as exc:
        err.print(f"[bold red]{type(exc).__name__}[/]: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
