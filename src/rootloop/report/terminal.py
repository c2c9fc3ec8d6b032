"""The live terminal view: an ``EventSink`` that shows the loop as it works.

On a terminal a spinner says which phase runs (and how many nodes the sweep
has checked); everything else is printed as it happens, so the same view
writes clean plain lines into a CI log or a file. Event data is read
leniently: an event this view does not understand is shown as its message,
never raised — a view must not break an investigation.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.status import Status as Spinner
from rich.table import Table
from rich.text import Text

from rootloop.events import Event
from rootloop.models import (
    Diagnosis,
    Finding,
    LoadTestResult,
    PriorContext,
    Status,
    UiTestResult,
    VerifyResult,
)

STATUS_STYLE = {
    Status.OK: "green",
    Status.UNKNOWN: "dim",
    Status.DEGRADED: "yellow",
    Status.UNREACHABLE: "bold red",
    Status.CRITICAL: "bold red",
}
RUN_STYLE = {
    "healthy": "bold green",
    "recovered": "bold yellow",
    "not-reproduced": "bold yellow",
    "escalated": "bold red",
    "paused": "bold yellow",
    "refused": "bold red",
    "failed": "bold red",
    "running": "bold blue",
}
GATE_STYLE = {"allow": "green", "approval": "yellow", "refuse": "bold red"}


class TerminalView:
    """Render loop events on a rich console; call it with each ``Event``."""

    def __init__(self, console: Console | None = None, *, spinner: bool | None = None) -> None:
        self.console = console or Console(stderr=True)
        live = self.console.is_terminal and not self.console.is_dumb_terminal
        self.use_spinner = live if spinner is None else spinner
        self._spinner: Spinner | None = None
        self._phase: str | None = None
        self._phase_started: dict[str, Any] = {}
        self._findings: list[Finding] = []

    # -- the sink -----------------------------------------------------------
    def __call__(self, event: Event) -> None:
        handler = getattr(self, "_on_" + event.kind.replace("-", "_"), None)
        try:
            if handler is None:
                self._line(event.message or event.kind, "dim")
            else:
                handler(event)
        except (ValidationError, KeyError, TypeError, ValueError):
            self._line(f"{event.kind}: {event.message}" if event.message else event.kind, "dim")

    def close(self) -> None:
        self._stop_spinner()

    # -- helpers ------------------------------------------------------------
    def _print(self, *objects: Any) -> None:
        if self._spinner is not None:
            self._spinner.console.print(*objects)
        else:
            self.console.print(*objects)

    def _line(self, text: str, style: str = "") -> None:
        self._print(Text(text, style=style))

    def _start_spinner(self, text: str) -> None:
        if not self.use_spinner:
            return
        if self._spinner is None:
            self._spinner = self.console.status(text, spinner="dots")
            self._spinner.start()
        else:
            self._spinner.update(text)

    def _stop_spinner(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None

    # -- events -------------------------------------------------------------
    def _on_run_start(self, e: Event) -> None:
        d = e.data
        resumed = " (resumed)" if d.get("resumed") else ""
        title = (
            f"rootloop · [bold]{escape(str(d.get('service', '')))}[/] · run {escape(e.run_id)}"
            f" · env {escape(str(d.get('environment', '?')))}{resumed}"
        )
        self.console.rule(title)

    def _on_prior(self, e: Event) -> None:
        prior = PriorContext.model_validate(e.data)
        if prior.empty:
            return
        lines = []
        if prior.last_summary:
            who = f" ({prior.last_run_id})" if prior.last_run_id else ""
            lines.append(f"last investigation{who}: {prior.last_summary}")
        lines += [f"similar {s.run_id}: {s.summary}" for s in prior.similar[:3]]
        lines += [f"won't repeat: {a.description}" for a in prior.failed_actions[:5]]
        self._print(
            Panel(
                Text("\n".join(lines)), title="previous context", border_style="cyan", expand=False
            )
        )

    def _on_phase(self, e: Event) -> None:
        phase = str(e.data.get("phase", "?"))
        state = e.data.get("state", "start")
        if state == "start":
            self._phase = phase
            self._phase_started[phase] = e.at
            if phase == "sweep":
                self._findings = []
            self._line(f"[{e.iteration}] {phase} …", "bold cyan")
            self._start_spinner(f"{phase} …")
            return
        started = self._phase_started.pop(phase, None)
        took = f" in {(e.at - started).total_seconds():.1f} s" if started else ""
        self._stop_spinner()
        if phase == "sweep" and self._findings:
            self._print(self._sweep_table())
        self._line(f"[{e.iteration}] {phase} done{took}", "dim")
        self._phase = None

    def _on_finding(self, e: Event) -> None:
        f = Finding.model_validate(e.data)
        self._findings.append(f)
        if self._spinner is not None:
            self._spinner.update(f"sweep … {len(self._findings)} nodes checked")
        elif self._phase != "sweep":
            self._print(self._finding_text(f))

    def _finding_text(self, f: Finding) -> Text:
        t = Text()
        t.append(f"{f.status.value:<11}", style=STATUS_STYLE[f.status])
        t.append(f" {f.node}: ", style="bold")
        t.append(f.summary)
        return t

    def _sweep_table(self) -> Table:
        bad = sum(1 for f in self._findings if f.status is not Status.OK)
        table = Table(
            title=f"sweep: {len(self._findings)} checks, {bad} anomalous",
            title_justify="left",
            expand=False,
        )
        table.add_column("node", style="bold", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("summary", overflow="fold")
        table.add_column("ms", justify="right", no_wrap=True)
        for f in sorted(self._findings, key=lambda f: (-f.status.severity, f.node)):
            table.add_row(
                f.node,
                Text(f.status.value, style=STATUS_STYLE[f.status]),
                f.summary,
                f"{f.duration_ms:.0f}",
            )
        return table

    def _on_diagnosis(self, e: Event) -> None:
        raw = e.data.get("diagnosis", e.data)
        d = Diagnosis.model_validate(raw)
        t = Text()
        t.append("root cause  ", style="dim")
        t.append(d.root_cause, style="bold red")
        t.append(f"   {d.category}   confidence {d.confidence:.0%}   ({d.reasoner})\n")
        if len(d.path) > 1:
            t.append("path        ", style="dim")
            t.append(" → ".join(d.path) + "\n")
        t.append(d.summary)
        action = e.data.get("action")
        rationale = e.data.get("rationale") or e.data.get("proposal")
        if isinstance(action, str) and action:
            t.append("\nproposal    ", style="dim")
            t.append(action, style="bold")
            if rationale:
                t.append(f"  ({rationale})", style="italic dim")
        elif rationale:
            t.append(f"\nproposal    {rationale}", style="italic")
        self._print(
            Panel(
                t,
                title=f"diagnosis · iteration {e.iteration}",
                border_style="magenta",
                expand=False,
            )
        )

    def _on_gate(self, e: Event) -> None:
        decision = str(e.data.get("decision", "?"))
        gate = e.data.get("gate", "")
        t = Text("gate ", style="dim")
        t.append(f"{decision}", style=GATE_STYLE.get(decision, "bold"))
        if gate:
            t.append(f" [{gate}]")
        reason = e.data.get("reason") or e.message
        if reason:
            t.append(f": {reason}")
        self._print(t)

    def _on_action(self, e: Event) -> None:
        d = e.data
        what = d.get("description") or e.message or (d.get("action") or {}).get("kind", "action")
        t = Text("action ", style="dim")
        t.append(str(what), style="bold")
        if d.get("error"):
            t.append(f" → failed: {d['error']}", style="red")
        else:
            result = d.get("result")
            detail = ""
            if isinstance(result, dict):
                detail = str(result.get("message") or result.get("changed") or "")
            elif result:
                detail = str(result)
            t.append(" → applied" + (f": {detail}" if detail else ""), style="green")
        self._print(t)

    def _on_progress(self, e: Event) -> None:
        msg = e.message or str(e.data.get("message", ""))
        if self._spinner is not None:
            self._spinner.update(msg)
        else:
            self._line(f"  … {msg}", "dim")

    def _on_verify(self, e: Event) -> None:
        v = VerifyResult.model_validate(e.data.get("verify", e.data))
        head = Text("verify ", style="dim")
        head.append("passed" if v.passed else "failed", style="green" if v.passed else "red")
        self._print(head)
        for c in v.checks:
            mark = Text("  ✓ " if c.passed else "  ✗ ", style="green" if c.passed else "red")
            mark.append(c.name)
            if c.detail:
                mark.append(f" — {c.detail}", style="dim")
            self._print(mark)

    def _on_test(self, e: Event) -> None:
        d = e.data
        load = d.get("load_test") or d.get("load") or (d if "p95_ms" in d else None)
        ui = d.get("ui_test") or d.get("ui") or (d if "steps" in d else None)
        if load:
            self._load(LoadTestResult.model_validate(load))
        if ui:
            self._ui(UiTestResult.model_validate(ui))
        if not load and not ui:
            self._line(e.message or "test", "dim")

    def _load(self, r: LoadTestResult) -> None:
        t = Text("load test ", style="dim")
        t.append("passed" if r.passed else "failed", style="green" if r.passed else "red")
        t.append(
            f"  {r.requests} requests at {r.rate:g}/s · success {r.success_ratio:.2%} · "
            f"p50 {r.p50_ms:.0f} ms · p95 {r.p95_ms:.0f} ms · p99 {r.p99_ms:.0f} ms"
        )
        self._print(t)
        for reason in r.reasons:
            self._line(f"  ✗ {reason}", "red")

    def _ui(self, r: UiTestResult) -> None:
        t = Text("ui test ", style="dim")
        t.append("passed" if r.passed else "failed", style="green" if r.passed else "red")
        t.append(f"  {sum(s.passed for s in r.steps)}/{len(r.steps)} steps · {r.duration_s:.1f} s")
        self._print(t)
        for s in r.steps:
            if not s.passed:
                self._line(f"  ✗ {s.name}" + (f" — {s.detail}" if s.detail else ""), "red")

    def _on_pr(self, e: Event) -> None:
        d = e.data
        where = d.get("url") or d.get("path") or e.message
        verb = "opened" if d.get("created", True) else "updated"
        t = Text(f"PR {verb} ", style="bold green")
        t.append(str(where))
        if d.get("branch"):
            t.append(f"  (branch {d['branch']})", style="dim")
        self._print(t)

    def _on_escalate(self, e: Event) -> None:
        reason = e.data.get("reason") or e.message or "no reason given"
        self._stop_spinner()
        suspects = [
            f"  {i}. {s.get('node')}: {'; '.join((s.get('reasons') or [])[:2]) or 'no detail'}"
            + (f" (since {s['onset']})" if s.get("onset") else "")
            for i, s in enumerate(e.data.get("suspects") or [], 1)
        ]
        where = "\nWhere to start:\n" + "\n".join(suspects) if suspects else ""
        self._print(
            Panel(
                Text(f"{reason}{where}\nA human takes it from here: see the PR and the report."),
                title="escalated",
                border_style="red",
                expand=False,
            )
        )

    def _on_note(self, e: Event) -> None:
        self._line(str(e.data.get("text") or e.message), "dim")

    def _on_usage(self, e: Event) -> None:
        items = [f"{k.replace('_', ' ')} {v}" for k, v in e.data.items() if v]
        if items:
            self._line("model usage: " + " · ".join(items), "dim")

    def _on_run_end(self, e: Event) -> None:
        self._stop_spinner()
        status = str(e.data.get("status", "?"))
        reason = e.data.get("reason") or e.message
        t = Text("run ")
        t.append(status, style=RUN_STYLE.get(status, "bold"))
        if reason:
            t.append(f": {reason}")
        self.console.rule(t)
