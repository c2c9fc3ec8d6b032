"""The ``mcp`` skill: check a node by calling a tool on an external MCP server.

The server is launched by ``command`` (stdio) or reached by ``url`` (streamable
HTTP) with the official SDK's client, whose context managers always stop a
launched server process, also when the sweep's timeout cancels the check. The
tool's answer becomes a Finding through a small declared mapping::

    skill: mcp
    command: mcp-server-git
    args: [--repository, /srv/app]
    tool: git_status
    arguments: {repo_path: /srv/app}
    status_rules:
      - when: {text_contains: "Changes not staged"}
        status: degraded
        summary: "uncommitted changes in the working tree"
    default_status: ok

Rules are tried in order on a successful result; the first that matches
decides. A result the server marks ``isError`` takes ``error_status``. A
server that cannot be reached, dies mid-call or does not answer in time is
``unreachable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import string
import tempfile
from typing import Any, Literal

import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rootloop.models import Evidence, Finding, Signal, Status
from rootloop.models.nodes import Node, SkillSettings
from rootloop.skills.base import BaseSkill, CheckContext

#: JSON-RPC codes that mean "the connection is gone", not "the server refused the call"
CONNECTION_CLOSED = -32000
#: seconds of a check's timeout kept back for stopping a launched server cleanly
SHUTDOWN_RESERVE = 5.0
EVIDENCE_CHARS = 4000


class When(BaseModel):
    """Conditions on the tool's result; every condition given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    field_: str | None = Field(
        default=None, alias="field", description="dotted path into the structured result"
    )
    equals: Any = None
    not_equals: Any = None
    one_of: list[Any] | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    exists: bool | None = None
    text_contains: str | None = None
    text_matches: str | None = Field(default=None, description="a regular expression")

    @model_validator(mode="after")
    def _check(self) -> When:
        needs_field = ("equals", "not_equals", "one_of", "gt", "gte", "lt", "lte", "exists")
        used = [k for k in needs_field if k in self.model_fields_set]
        if used and self.field_ is None:
            raise ValueError(f"'{used[0]}' compares a field: add 'field: <path>'")
        if not used and self.field_ is None and not (self.text_contains or self.text_matches):
            raise ValueError("a rule needs a condition: field + equals/gt/..., or text_contains")
        if self.text_matches is not None:
            try:
                re.compile(self.text_matches)
            except re.error as exc:
                raise ValueError(f"text_matches is not a valid regular expression: {exc}") from None
        return self

    def matches(self, data: Any, text: str) -> bool:
        if self.text_contains is not None and self.text_contains.lower() not in text.lower():
            return False
        if self.text_matches is not None and not re.search(self.text_matches, text):
            return False
        if self.field_ is None:
            return True
        found, value = lookup(data, self.field_)
        if self.exists is not None and found != self.exists:
            return False
        if not (self.model_fields_set & _COMPARATORS):
            # 'field' alone: present and truthy ('exists' alone: present or absent)
            return True if self.exists is not None else found and bool(value)
        return found and self._compare(value)

    def _compare(self, value: Any) -> bool:
        s = self.model_fields_set
        if "equals" in s and not _same(value, self.equals):
            return False
        if "not_equals" in s and _same(value, self.not_equals):
            return False
        if self.one_of is not None and not any(_same(value, v) for v in self.one_of):
            return False
        for op, bound in (("gt", self.gt), ("gte", self.gte), ("lt", self.lt), ("lte", self.lte)):
            if bound is None:
                continue
            number = _number(value)
            if number is None or not _ORDER[op](number, bound):
                return False
        return True


_COMPARATORS = {"equals", "not_equals", "one_of", "gt", "gte", "lt", "lte"}
_ORDER = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


class StatusRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    when: When
    status: Status
    summary: str | None = Field(default=None, description="a template like summary_template")


class McpSettings(SkillSettings):
    command: str | None = Field(default=None, description="launch the server: the executable")
    args: list[str] = []
    env: dict[str, str] = Field(default={}, description="extra env for a launched server")
    cwd: str | None = None
    url: str | None = Field(default=None, description="a streamable HTTP endpoint, e.g. …/mcp")
    headers: dict[str, str] = Field(default={}, description="HTTP headers (write ${TOKEN})")
    tool: str
    arguments: dict[str, Any] = {}
    status_rules: list[StatusRule] = []
    default_status: Status = Status.OK
    error_status: Literal["degraded", "critical", "unknown", "unreachable"] = "degraded"
    summary_field: str | None = None
    summary_template: str | None = None
    signal_fields: list[str] = Field(default=[], description="result fields kept as signals")

    @model_validator(mode="after")
    def _one_server(self) -> McpSettings:
        if bool(self.command) == bool(self.url):
            raise ValueError("give exactly one of 'command' (launch a server) or 'url' (reach one)")
        if self.url and not re.match(r"^https?://", self.url):
            raise ValueError(f"url must start with http:// or https:// (got {self.url!r})")
        if self.command is None and (self.args or self.env or self.cwd):
            raise ValueError("'args', 'env' and 'cwd' apply to a launched server ('command')")
        return self


class McpSkill(BaseSkill):
    name = "mcp"
    Settings = McpSettings
    default_timeout = 20.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        s = node.settings
        assert isinstance(s, McpSettings)
        for key, value in s.env.items():
            ctx.redactor.add_env(key, value)
        for key, value in s.headers.items():
            if key.lower() in ("authorization", "cookie") or "token" in key.lower():
                ctx.redactor.add(value.split(" ", 1)[-1])
        budget = max(node.timeout * 0.5, node.timeout - SHUTDOWN_RESERVE)
        with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errlog:
            try:
                result = await self._call(s, budget, errlog)
            except Exception as exc:  # transport failures arrive wrapped in exception groups
                status, summary = classify(exc, s, budget)
                return self._failed(node, status, summary, errlog)
        return self.map_result(node, s, result)

    async def _call(self, s: McpSettings, budget: float, errlog: Any) -> types.CallToolResult:
        """Connect and call under ``budget``; stopping the server is outside it (and shielded)."""
        async with contextlib.AsyncExitStack() as stack:
            if s.command:
                params = StdioServerParameters(
                    command=s.command, args=s.args, env=s.env or None, cwd=s.cwd
                )
                transport: Any = stdio_client(params, errlog=errlog)
            else:
                http = None
                if s.headers:  # a client we hand to the transport is ours to close
                    http = await stack.enter_async_context(
                        create_mcp_http_client(headers=s.headers)
                    )
                transport = streamable_http_client(s.url or "", http_client=http)
            async with asyncio.timeout(budget):
                client = await stack.enter_async_context(
                    Client(transport, mode="legacy", cache=None)
                )
                return await client.call_tool(s.tool, s.arguments)

    # -- mapping ---------------------------------------------------------------------------
    def map_result(self, node: Node, s: McpSettings, result: types.CallToolResult) -> Finding:
        text = result_text(result)
        data = result_data(result, text)
        evidence = (
            [Evidence(kind="text", title=f"{s.tool} result", text=_clip(text))] if text else []
        )
        signals = [
            Signal(name=path, value=_scalar(value))
            for path in s.signal_fields
            for found, value in [lookup(data, path)]
            if found
        ]
        if result.is_error:
            first = " ".join(text.split())[:240] or "the tool reported an error"
            return self.finding(
                node,
                Status(s.error_status),
                f"{s.tool} failed: {first}",
                signals=signals,
                evidence=evidence,
                error=_clip(text, 500) or None,
            )
        rule = next((r for r in s.status_rules if r.when.matches(data, text)), None)
        status = rule.status if rule else s.default_status
        template = (rule.summary if rule else None) or s.summary_template
        fields = {"text": _first_line(text), "tool": s.tool, "node": node.name, "status": status}
        if template:
            summary = render(template, data, fields)
        elif s.summary_field and lookup(data, s.summary_field)[0]:
            summary = str(lookup(data, s.summary_field)[1])
        else:
            summary = _first_line(text) or f"{s.tool} answered"
        return self.finding(node, status, summary[:300], signals=signals, evidence=evidence)

    def _failed(self, node: Node, status: Status, summary: str, errlog: Any) -> Finding:
        tail = _tail(errlog)
        evidence = [Evidence(kind="log", title="server stderr", text=tail)] if tail else []
        return self.finding(node, status, summary[:300], evidence=evidence, error=summary[:500])


# -- reading a result ------------------------------------------------------------------------
def result_text(result: types.CallToolResult) -> str:
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.EmbeddedResource) and isinstance(
            block.resource, types.TextResourceContents
        ):
            parts.append(block.resource.text)
    return "\n".join(parts)


def result_data(result: types.CallToolResult, text: str) -> Any:
    """The structured result; else the text when it is JSON; else None."""
    if result.structured_content is not None:
        return result.structured_content
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except ValueError:
            return None
    return None


def lookup(data: Any, path: str) -> tuple[bool, Any]:
    """``a.b.0.c`` into dicts and lists: (found, value)."""
    value = data
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return False, None
    return True, value


class _Formatter(string.Formatter):
    def __init__(self, data: Any, fields: dict[str, Any]) -> None:
        self.data, self.fields = data, fields

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        found, value = lookup(self.data, field_name)
        if found:
            return value, field_name
        return self.fields.get(field_name.removeprefix("_"), "?"), field_name


def render(template: str, data: Any, fields: dict[str, Any]) -> str:
    """``"{status.state} after {checks.0.name}"``: dotted paths into the result; then
    ``node``, ``tool``, ``text`` (its first line) and ``status`` (the finding's) — also as
    ``_node`` … when the result has a field of that name. A missing one shows '?'."""
    try:
        return _Formatter(data, fields).format(template)
    except (ValueError, IndexError, KeyError) as exc:
        return f"{template} (template error: {exc})"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _scalar(value: Any) -> float | int | str | bool | None:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, default=str)[:200]


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:200]


def _clip(text: str, n: int = EVIDENCE_CHARS) -> str:
    return text if len(text) <= n else text[:n] + f"\n… ({len(text) - n} more characters)"


def _tail(errlog: Any, n: int = 1500) -> str:
    try:
        errlog.flush()
        errlog.seek(0)
        text = str(errlog.read())
    except (OSError, ValueError):
        return ""
    return text[-n:].strip()


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def classify(exc: BaseException, s: McpSettings, budget: float) -> tuple[Status, str]:
    """Status and one line for a failed call: the innermost real error, not 'unhandled
    errors in a TaskGroup'."""
    leaves = _leaves(exc)
    leaf = next((e for e in leaves if not isinstance(e, asyncio.CancelledError)), leaves[0])
    if isinstance(leaf, TimeoutError):
        return Status.UNREACHABLE, f"no answer from {s.tool} within {budget:g}s"
    if isinstance(leaf, FileNotFoundError | PermissionError) and s.command:
        return Status.UNKNOWN, f"cannot launch the MCP server '{s.command}': {leaf.strerror}"
    if isinstance(leaf, MCPError):
        if leaf.code == CONNECTION_CLOSED:
            return Status.UNREACHABLE, "the MCP server closed the connection (exited or crashed)"
        return Status.UNKNOWN, f"the MCP server refused {s.tool}: {leaf}"
    text = " ".join(str(leaf).split()) or type(leaf).__name__
    return Status.UNREACHABLE, f"cannot reach the MCP server: {type(leaf).__name__}: {text}"
