"""Plain facts pulled out of a debug context: the final diagnosis, the fix, what failed.

Summaries, the index and ``prior()`` all read a run through these, so they agree
on what "failed" and "fixed" mean.
"""

from __future__ import annotations

from rootloop.context import DebugContext, HistoryEntry
from rootloop.models import Diagnosis, Finding, Outcome, Status


def estimate_tokens(text: str) -> int:
    """About four characters a token: close enough for budgets, no tokenizer needed."""
    return (len(text) + 3) // 4


def clip(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[: max(0, max_chars - 1)].rstrip() + "…"


def final_diagnosis(ctx: DebugContext) -> Diagnosis | None:
    return next((h.diagnosis_detail for h in reversed(ctx.history) if h.diagnosis_detail), None)


def diagnosis_key(ctx: DebugContext) -> str | None:
    d = final_diagnosis(ctx)
    return d.key if d else None


def is_fix(entry: HistoryEntry) -> bool:
    """Only a verified fix: the outcome says so, never the wording of the result."""
    return bool(entry.action) and entry.outcome is Outcome.FIXED


def fixes(ctx: DebugContext) -> list[HistoryEntry]:
    return [h for h in ctx.history if is_fix(h)]


def failures(ctx: DebugContext) -> list[HistoryEntry]:
    return [h for h in ctx.history if h.did_not_help and h.action]


def unhealthy(findings: list[Finding]) -> list[Finding]:
    bad = [f for f in findings if f.status is not Status.OK]
    return sorted(bad, key=lambda f: f.status.severity, reverse=True)


def outcome(ctx: DebugContext) -> str:
    reason = f": {ctx.status_reason}" if ctx.status_reason else ""
    return f"{ctx.status}{reason}"


def findings_digest(findings: list[Finding], limit: int = 12) -> str:
    """One line per unhealthy finding with its off-threshold signals: what search matches."""
    lines = []
    for f in unhealthy(findings)[:limit]:
        sigs = ", ".join(str(s) for s in f.signals if s.status is not Status.OK)
        err = f" error: {f.error}" if f.error else ""
        lines.append(f"{f.node} [{f.skill}] {f.status}: {f.summary}. {sigs}{err}".strip())
    return "\n".join(lines)


def evidence_digest(findings: list[Finding], per_item: int = 300, limit: int = 40) -> str:
    """Evidence of unhealthy findings (log lines, queries, events), clipped: exact tokens."""
    lines = [
        f"{f.node} {ev.title}: {clip(ev.text, per_item)}"
        for f in unhealthy(findings)[:limit]
        for ev in f.evidence[:3]
    ]
    return "\n".join(lines)


def synopsis(ctx: DebugContext, findings: list[Finding], max_chars: int = 700) -> str:
    """One paragraph that stands for the run in ``prior()`` and search results."""
    d = final_diagnosis(ctx)
    parts = [f"{ctx.service}:"]
    if d:
        parts.append(f"{d.summary} (root cause {d.root_cause}, {d.category}).")
    else:
        bad = unhealthy(findings)
        parts.append(bad[0].summary + "." if bad else "no diagnosis.")
    tried = failures(ctx)
    if tried:
        parts.append("Did not help: " + "; ".join(h.action for h in tried[:3]) + ".")
    fixed = fixes(ctx)
    if fixed:
        parts.append(f"Fix: {fixed[-1].action}.")
    parts.append(f"Outcome: {outcome(ctx)}.")
    return clip(" ".join(parts), max_chars)
