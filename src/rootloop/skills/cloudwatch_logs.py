"""CloudWatch Logs: the errors of a window, folded into a digest a reader can take in.

FilterLogEvents fetches the lines matching the filter pattern (bounded in
events and time); continuation lines are glued back onto their record; the
error records are clustered into templates (count, first and last seen) and
their stack traces parsed into exception, message and frames. 100,000 lines
come back as a few dozen: the templates, the distinct traces, and the time
errors first appeared.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field, field_validator

from rootloop.analysis.stacktrace import Record, StackTrace, assemble, parse
from rootloop.analysis.templates import LogDigest, TemplateDigester
from rootloop.models import Evidence, Finding
from rootloop.models.nodes import Node, SkillSettings
from rootloop.platforms.aws.errors import AWS_ERRORS, failure_finding
from rootloop.platforms.aws.logs import LogEvent, filter_events
from rootloop.platforms.aws.metrics import Window
from rootloop.platforms.aws.session import AwsClients, AwsConfig, clients_for
from rootloop.skills.base import BaseSkill, CheckContext
from rootloop.skills.verdicts import Rule, Value, assess

#: server-side: any line that may belong to an error (OR of terms); refined locally below
DEFAULT_PATTERN = "?ERROR ?Error ?error ?FATAL ?CRITICAL ?Exception ?Traceback ?File ?panic"
DEFAULT_ERROR_RE = (
    r"\b(ERROR|FATAL|CRITICAL|SEVERE|PANIC|panic|Traceback|Exception|"
    r"[A-Z]\w*(Error|Exception))\b|level=(error|fatal)|\"level\":\s*\"(error|fatal)\""
)
_TRACE_MARK = re.compile(r"Traceback \(most recent call last\)|\n\s+at [\w$.<>]+\(|Caused by:")


class Settings(SkillSettings, AwsConfig):
    log_group: str
    log_stream_prefix: str | None = None
    filter_pattern: str = DEFAULT_PATTERN
    error_regex: str = DEFAULT_ERROR_RE
    window_minutes: float = Field(default=15, gt=0, le=1440)
    max_events: int = Field(default=100_000, ge=1, le=1_000_000)
    templates: int = Field(default=15, ge=1, le=100)
    traces: int = Field(default=3, ge=0, le=20)
    trace_frames: int = Field(default=4, ge=1, le=50)
    error_warn: int = Field(default=1, ge=1)
    error_crit: int = Field(default=100, ge=1)

    @field_validator("error_regex")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


@dataclass
class TraceGroup:
    trace: StackTrace
    count: int
    first_seen: datetime | None


@dataclass
class LogsDigest:
    """What the skill read and what it made of it; timings split fetching vs digesting."""

    scanned: int = 0
    errors: int = 0
    digest: LogDigest | None = None
    traces: list[TraceGroup] = field(default_factory=list)
    first_error_at: datetime | None = None
    last_error_at: datetime | None = None
    truncated: bool = False
    fetch_seconds: float = 0.0
    digest_seconds: float = 0.0

    def lines(self, traces: int = 3, frames: int = 4) -> list[str]:
        """The digest as text lines: what a reasoner (or a human) reads."""
        out: list[str] = []
        if self.digest is not None:
            for t in self.digest.templates:
                span = ""
                if t.first_seen and t.last_seen:
                    span = f" (first {t.first_seen:%H:%M:%S}, last {t.last_seen:%H:%M:%S})"
                out.append(f"{t.count}x {t.template[:300]}{span}")
        for g in self.traces[:traces]:
            first = f", first {g.first_seen:%H:%M:%S}" if g.first_seen else ""
            out.append(f"stack trace seen {g.count}x{first}:")
            out.extend("  " + ln for ln in g.trace.render(max_frames=frames).splitlines())
        return out


def _headline(rec: Record, trace: StackTrace | None) -> str:
    first = rec.first_line.strip()
    if trace is None:
        return first
    exc = f"{trace.exception}: {trace.message}"
    if first.startswith("Traceback") or first == exc or not first:
        return exc
    return f"{first} -> {exc}"


def digest_events(
    events: Iterable[LogEvent], error_regex: str = DEFAULT_ERROR_RE, limit: int = 15
) -> LogsDigest:
    """Fold events into error templates and distinct stack traces (pure, no I/O)."""
    began = time.perf_counter()
    err = re.compile(error_regex)
    ordered = sorted(events, key=lambda e: e.at)  # stable: keeps each stream's line order
    out = LogsDigest(scanned=len(ordered))
    digester = TemplateDigester()
    traces: dict[str, TraceGroup] = {}
    for rec in assemble((e.at, e.stream, e.message) for e in ordered):
        trace = parse(rec.text) if _TRACE_MARK.search(rec.text) else None
        if trace is None and not err.search(rec.text):
            continue
        out.errors += 1
        if out.first_error_at is None or (rec.at and rec.at < out.first_error_at):
            out.first_error_at = rec.at
        if out.last_error_at is None or (rec.at and rec.at > out.last_error_at):
            out.last_error_at = rec.at
        digester.add(_headline(rec, trace), rec.at)
        if trace is not None:
            g = traces.get(trace.signature)
            if g is None:
                traces[trace.signature] = TraceGroup(trace, 1, rec.at)
            else:
                g.count += 1
    out.digest = digester.digest(limit)
    out.traces = sorted(traces.values(), key=lambda g: -g.count)
    out.digest_seconds = time.perf_counter() - began
    return out


def read_errors(
    clients: AwsClients, s: Any, window: Window, deadline: float | None = None
) -> LogsDigest:
    """Fetch the window's candidate error lines and digest them (blocking)."""
    fetched = filter_events(
        clients.logs,
        s.log_group,
        window.start,
        window.end,
        pattern=s.filter_pattern or None,
        stream_prefix=s.log_stream_prefix,
        max_events=s.max_events,
        deadline=deadline,
    )
    out = digest_events(fetched.events, s.error_regex, s.templates)
    out.truncated, out.fetch_seconds = fetched.truncated, fetched.seconds
    return out


#: a log group's signals (see ``rootloop.skills.verdicts``): the error lines against the
#: map's thresholds, and the most frequent exception with them
RULES: tuple[Rule, ...] = (
    Rule("error_lines", "above", warn="error_warn", crit="error_crit"),
    Rule("error_templates"),
    Rule("stack_traces"),
    Rule("lines_scanned"),
    Rule("truncated"),
    Rule("window_start"),
    Rule("exception", same_as="error_lines", show="none"),
    Rule("root_exception"),
)


class CloudWatchLogsSkill(BaseSkill):
    name: ClassVar[str] = "cloudwatch-logs"
    Settings: ClassVar[type[SkillSettings]] = Settings
    default_timeout: ClassVar[float] = 30.0

    async def check(self, node: Node, ctx: CheckContext) -> Finding:
        s: Any = node.settings
        window = Window.around(ctx.window_start, ctx.window_end, s.window_minutes, 0)
        # stop paging with time left to digest what was read
        deadline = time.monotonic() + node.timeout * 0.6
        try:
            d = await ctx.run_blocking(read_errors, clients_for(s), s, window, deadline)
        except AWS_ERRORS as exc:
            return failure_finding(node.name, self.name, exc)
        return self.judge(node, s, d, window)

    def judge(self, node: Node, s: Any, d: LogsDigest, window: Window) -> Finding:
        distinct = d.digest.distinct if d.digest else 0
        values: dict[str, Value] = {
            "error_lines": d.errors,
            "error_templates": distinct,
            "stack_traces": sum(g.count for g in d.traces),
            "lines_scanned": d.scanned,
            "truncated": d.truncated,
            # what was looked at: an onset at the window's start may have begun before it
            "window_start": window.start.isoformat(),
        }
        if d.traces:
            top = d.traces[0].trace
            values["exception"] = top.exception
            values["root_exception"] = top.root.exception
        verdict = assess(RULES, values, s)
        status, signals = verdict.status, verdict.signals
        evidence = []
        if d.digest and d.digest.templates:
            evidence.append(
                Evidence(
                    kind="log",
                    title=f"error templates in {s.log_group}",
                    text="\n".join(d.lines(traces=0)),
                )
            )
        for g in d.traces[: s.traces]:
            evidence.append(
                Evidence(
                    kind="stack",
                    title=f"{g.trace.exception} ({g.count}x)",
                    text=g.trace.render(max_frames=s.trace_frames),
                )
            )
        if d.errors == 0:
            summary = f"no errors in {s.log_group} in the last {window.minutes:g} min"
        else:
            frequent = d.digest.templates[0].template if d.digest and d.digest.templates else ""
            summary = (
                f"{d.errors} error line(s) in {s.log_group} since "
                f"{d.first_error_at:%H:%M:%S} ({distinct} template(s)); "
                f"most frequent: {frequent[:200]}"
            )
            if d.traces:
                summary += f"; exception {d.traces[0].trace.headline()[:200]}"
        if d.truncated:
            summary += f" [partial: stopped after {d.scanned} lines]"
        return self.finding(
            node,
            status,
            summary[:1000],
            signals=signals,
            evidence=evidence,
            anomaly_started_at=d.first_error_at if d.errors else None,
        )
