"""Short (~500 tokens) and detailed (~2,000 tokens) Markdown summaries of a run.

The default is a deterministic template over the structured data; a
``Summarizer`` (the model reasoner's, say) can write them instead. Whatever
writes them, the five sections are always there, and a summarizer whose output
lacks one is replaced by the template rather than trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from rootloop.context import DebugContext, HistoryEntry
from rootloop.memory import digest as dg
from rootloop.models import Finding

SECTIONS = ("Summary", "Root cause", "Tried and did not help", "Fix", "Next steps")
SHORT_TOKENS = 500
DETAILED_TOKENS = 2000


@dataclass
class SummaryInput:
    """Everything a summarizer may read. Already redacted."""

    context: DebugContext
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)


@dataclass
class Summaries:
    short: str
    detailed: str
    source: str = "template"


class Summarizer(Protocol):
    """Writes both summaries. Must keep the five ``## `` sections of ``SECTIONS``."""

    name: str

    def summarize(self, inp: SummaryInput) -> Summaries: ...


class AsyncSummarizer(Protocol):
    name: str

    async def summarize(self, inp: SummaryInput) -> Summaries: ...


def missing_sections(markdown: str) -> list[str]:
    heads = {line[3:].strip().lower() for line in markdown.splitlines() if line.startswith("## ")}
    return [s for s in SECTIONS if s.lower() not in heads]


def valid(s: Summaries) -> bool:
    return not missing_sections(s.short) and not missing_sections(s.detailed)


class TemplateSummarizer:
    """Deterministic summaries: same context in, same Markdown out."""

    name = "template"

    def summarize(self, inp: SummaryInput) -> Summaries:
        return Summaries(short=_render(inp, detailed=False), detailed=_render(inp, detailed=True))


def _render(inp: SummaryInput, detailed: bool) -> str:
    ctx, findings = inp.context, inp.findings
    item = 400 if detailed else 160
    sections = {
        "Summary": _summary(ctx, findings, detailed, item),
        "Root cause": _root_cause(ctx, detailed, item),
        "Tried and did not help": _tried(ctx, detailed, item),
        "Fix": _fix(ctx, item),
        "Next steps": _next_steps(ctx, inp.notes, detailed, item),
    }
    budget = (DETAILED_TOKENS if detailed else SHORT_TOKENS) * 4
    title = f"# {ctx.service} — run {ctx.run_id}\n"
    return title + _fit(sections, budget - len(title))


def _fit(sections: dict[str, list[str]], budget_chars: int) -> str:
    """Join the sections; if over budget, drop trailing lines of the longest section first."""

    def render() -> str:
        return "".join(f"\n## {n}\n" + "\n".join(lines) + "\n" for n, lines in sections.items())

    text = render()
    while len(text) > budget_chars:
        name = max(sections, key=lambda n: sum(len(x) for x in sections[n]))
        lines = sections[name]
        if len(lines) > 1:
            lines.pop(-2 if lines[-1].startswith("…") else -1)
            if not lines[-1].startswith("…"):
                lines.append("… (more in the detailed summary and the transcript)")
        else:
            lines[0] = dg.clip(lines[0], max(40, len(lines[0]) - (len(text) - budget_chars) - 1))
            if len(render()) >= len(text):
                break
        text = render()
    return text


def _summary(ctx: DebugContext, findings: list[Finding], detailed: bool, item: int) -> list[str]:
    bad = dg.unhealthy(findings)
    when = ctx.started_at.strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"Investigation of **{ctx.service}** in `{ctx.environment}` started {when}: "
        f"{ctx.iteration} iteration(s), outcome **{dg.outcome(ctx)}**. "
        f"{len(bad)} of {len(findings)} checks unhealthy."
    ]
    for f in bad[: 12 if detailed else 3]:
        sigs = ", ".join(str(s) for s in f.signals if not s.status.healthy)
        line = f"- `{f.node}` ({f.skill}, {f.status}): {f.summary}" + (f" — {sigs}" if sigs else "")
        out.append(dg.clip(line, item))
        if detailed:
            for ev in f.evidence[:1]:
                out.append(dg.clip(f"  - {ev.kind} *{ev.title}*: {ev.text}", item))
    if ctx.pr:
        out.append(f"PR: {ctx.pr}")
    return out


def _root_cause(ctx: DebugContext, detailed: bool, item: int) -> list[str]:
    d = dg.final_diagnosis(ctx)
    if d is None:
        return ["Not determined."]
    out = [
        dg.clip(
            f"**{d.root_cause}** — {d.category} (confidence {d.confidence:.2f}, "
            f"{d.reasoner}): {d.summary}",
            item * 2,
        )
    ]
    if d.path:
        out.append("Path: " + " → ".join(d.path))
    for ev in d.evidence[: 8 if detailed else 2]:
        out.append(dg.clip(f"- {ev}", item))
    if detailed and d.candidates:
        ranked = ", ".join(f"{c.node} ({c.score:.2f})" for c in d.candidates[:5])
        out.append(f"Other candidates: {ranked}")
    return out


def _entry(h: HistoryEntry, item: int) -> str:
    extra = []
    if h.commit:
        extra.append(f"commit {h.commit[:10]}")
    if h.gha:
        extra.append(f"CI {h.gha}")
    tail = f" ({', '.join(extra)})" if extra else ""
    return dg.clip(f"- iteration {h.iteration}: {h.action} → {h.result}{tail}", item)


def _tried(ctx: DebugContext, detailed: bool, item: int) -> list[str]:
    failed = dg.failures(ctx)
    if not failed:
        return ["Nothing failed."]
    out = []
    for h in failed[: 20 if detailed else 4]:
        out.append(_entry(h, item))
        if detailed and h.diagnosis_detail:
            out.append(
                f"  - for diagnosis `{h.diagnosis_detail.key}`, "
                f"fingerprint `{h.action_fingerprint}`"
            )
    return out


def _fix(ctx: DebugContext, item: int) -> list[str]:
    fixed = dg.fixes(ctx)
    if not fixed:
        return ["No fix applied yet."]
    out = [_entry(h, item) for h in fixed]
    h = fixed[-1]
    if h.changed:
        out.append(dg.clip(f"Changed: {h.changed}", item))
    if h.undo:
        out.append(dg.clip(f"Undo: {h.undo}", item))
    return out


def _next_steps(ctx: DebugContext, notes: list[str], detailed: bool, item: int) -> list[str]:
    out = []
    if ctx.status == "healthy":
        out.append(
            f"- Review and merge the PR{f' {ctx.pr}' if ctx.pr else ''}; "
            "watch the service after the deploy."
        )
    elif ctx.pending_gate:
        g = ctx.pending_gate
        out.append(
            dg.clip(
                f"- Approve or refuse gate `{g.gate}`: {g.reason} "
                f"(`rootloop approve {ctx.run_id}`).",
                item,
            )
        )
    elif ctx.status in ("escalated", "paused"):
        out.append(
            dg.clip(f"- A human takes over: {ctx.status_reason or 'see the findings'}.", item)
        )
    elif ctx.status == "running":
        out.append("- The run was interrupted; resume it or start a new one.")
    else:
        out.append(dg.clip(f"- Investigate by hand: {dg.outcome(ctx)}.", item))
    tried = dg.failures(ctx)
    if tried:
        out.append("- Do not repeat: " + "; ".join(h.action for h in tried[:3]) + ".")
    for n in (notes + list(ctx.notes))[: 10 if detailed else 3]:
        out.append(dg.clip(f"- Note: {n}", item))
    return out
