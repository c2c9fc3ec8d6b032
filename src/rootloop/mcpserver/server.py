"""rootloop as an MCP server: its sweep, diagnosis and run history as MCP tools and resources.

Read-only by default. The tools that change the world (``apply_action``,
``run_investigation``) are registered only when the server is started with
``allow_actions``; a client that was not given them cannot call them, and
every action they carry out still passes every gate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from rootloop import __version__
from rootloop import topology as topology_mod
from rootloop.context import DebugContext
from rootloop.errors import RootloopError, UserError
from rootloop.mcpserver.toolbox import (
    ActionOutcome,
    DiagnoseResult,
    HistoryResult,
    InvestigationResult,
    ReportResult,
    ServerConfig,
    SweepResult,
    Toolbox,
)
from rootloop.models import Finding
from rootloop.redact import Redactor, install_log_redaction
from rootloop.skills import registry

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=True)
ACT = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)

READ_TOOLS = ("sweep", "check_node", "diagnose", "get_debug_context", "get_report")
ACTION_TOOLS = ("apply_action", "run_investigation")

MapArg = Annotated[
    str | None,
    Field(description="the map: a path or a service name; default: the server's first map"),
]

INSTRUCTIONS = (
    "rootloop checks a microservice and everything around it (its topology map) in "
    "parallel and names the root cause of a failure. Start with 'sweep' for the state of "
    "every node, 'diagnose' for the root cause and the fix rootloop would propose (not "
    "applied), 'get_report' / 'get_debug_context' for past investigations."
)


@contextmanager
def clear_errors(kind: type[Exception] = ToolError) -> Iterator[None]:
    """rootloop's own errors reach the client as their one clear line (the SDK would
    replace any other exception's text with 'Error executing tool …')."""
    try:
        yield
    except RootloopError as exc:
        raise kind(Redactor().text(f"{type(exc).__name__}: {exc}")) from None


def memory_search_available() -> bool:
    """``search_history`` exists only when rootloop.memory offers a search."""
    try:
        from rootloop.memory import Memory
    except ImportError:
        return False
    return callable(getattr(Memory, "search", None))


def build_server(config: ServerConfig) -> MCPServer:
    install_log_redaction()  # the server's own logs go to stderr, redacted like the rest
    box = Toolbox(config)
    server = MCPServer(
        "rootloop",
        title="rootloop",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )
    _read_tools(server, box)
    if memory_search_available():
        _history_tool(server, box)
    if config.allow_actions:
        _action_tools(server, box)
    _resources(server, box)
    return server


def _read_tools(server: MCPServer, box: Toolbox) -> None:
    @server.tool(annotations=READ)
    async def sweep(map: MapArg = None) -> SweepResult:
        """Check every node of the map at once; one finding per node (status, summary,
        signals, evidence). A node that does not answer in time is 'unreachable'."""
        with clear_errors():
            return await box.sweep(map)

    @server.tool(annotations=READ)
    async def check_node(
        node: Annotated[str, Field(description="a node name, e.g. 'redis' or 'svc/health'")],
        map: MapArg = None,
    ) -> Finding:
        """Check one node of the map and return its finding."""
        with clear_errors():
            return await box.check_node(map, node)

    @server.tool(annotations=READ)
    async def diagnose(map: MapArg = None) -> DiagnoseResult:
        """Sweep, then reason to a root cause: the diagnosis (node, category, confidence,
        evidence), ranked candidates, the path from the symptom to the cause, and the action
        rootloop would propose with what its gates would say. Nothing is applied."""
        with clear_errors():
            return await box.diagnose(map)

    @server.tool(annotations=READ)
    def get_debug_context(
        run_id: Annotated[str, Field(description="a run id (see the rootloop://runs resource)")],
    ) -> DebugContext:
        """The debug context of a run: every iteration's diagnosis, action and result."""
        with clear_errors():
            return box.debug_context(run_id)

    @server.tool(annotations=READ)
    def get_report(run_id: Annotated[str, Field(description="a run id")]) -> ReportResult:
        """A run's report as Markdown: the pull-request body when the run wrote one, else
        one built from its debug context."""
        with clear_errors():
            return box.report(run_id)


def _history_tool(server: MCPServer, box: Toolbox) -> None:
    @server.tool(annotations=READ)
    def search_history(
        query: Annotated[str, Field(description="words, e.g. 'OOMKilled payments'")],
        k: Annotated[int, Field(ge=1, le=50)] = 5,
        service: str | None = None,
    ) -> HistoryResult:
        """Search past investigations (keywords and meaning): which runs looked like this."""
        with clear_errors():
            return box.search_history(query, k, service)


def _action_tools(server: MCPServer, box: Toolbox) -> None:
    @server.tool(annotations=ACT)
    async def apply_action(
        action: Annotated[
            dict[str, Any],
            Field(
                description="a typed action, e.g. {'kind': 'set-redis-policy', 'target': "
                "'redis', 'policy': 'allkeys-lru'} (see diagnose's proposed_action)"
            ),
        ],
        map: MapArg = None,
        run_id: str | None = None,
    ) -> ActionOutcome:
        """Apply one action after rootloop's gates: production is refused, a schema change
        waits for a human's approval, an action that already failed is refused. A refusal
        or an approval request is the answer; nothing runs then."""
        with clear_errors():
            return await box.apply_action(action, map, run_id)

    @server.tool(annotations=ACT)
    async def run_investigation(
        map: MapArg = None,
        reasoner: Annotated[str, Field(pattern="^(rules|model|hybrid|auto)$")] = "rules",
    ) -> InvestigationResult:
        """Run a whole investigation (sweep → reason → gate → act → verify → test → PR) on a
        lower environment, with every gate. Can take minutes."""
        with clear_errors():
            return await box.run_investigation(map, reasoner)


def _resources(server: MCPServer, box: Toolbox) -> None:
    for path in box.config.maps:
        name = _service_name(path)
        server.resource(
            f"rootloop://maps/{name}",
            name=f"map {name}",
            description=f"the topology map {path}",
            mime_type="application/yaml",
        )(_map_reader(path))

    @server.resource(
        "rootloop://runs",
        name="runs",
        description="recent investigations (run ids for rootloop://reports/{run_id})",
        mime_type="application/json",
    )
    def runs() -> str:
        with clear_errors(ResourceError):
            return json.dumps([r.model_dump(mode="json") for r in box.runs()], indent=2)

    @server.resource(
        "rootloop://reports/{run_id}",
        name="report",
        description="a run's report (Markdown)",
        mime_type="text/markdown",
    )
    def report(run_id: str) -> str:
        with clear_errors(ResourceError):
            return box.report(run_id).markdown


def _map_reader(path: Path) -> Callable[[], str]:
    def read() -> str:
        return Redactor().text(path.read_text(encoding="utf-8"))

    return read


def _service_name(path: Path) -> str:
    try:
        return topology_mod.load(path, skills=registry).service
    except UserError:
        return path.parent.name or path.stem
