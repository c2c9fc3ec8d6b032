"""The pull-request body: what was wrong, the evidence, the map, the history, the figures.

One Markdown document, fitted under GitHub's 65,536-character limit by
trimming evidence first (and saying so), and passed through the redactor on
the way out even though the report was redacted when it was built.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from rootloop.models import Finding, Status
from rootloop.redact import Redactor
from rootloop.report.mermaid import render_mermaid
from rootloop.report.model import RunReport, TopologyView, outcome_text

#: GitHub's limit is 65,536; keep a margin for the forge's own footer
BODY_LIMIT = 65_000
_EVIDENCE_BUDGETS = (4000, 1500, 600, 200, 0)

__all__ = ["BODY_LIMIT", "RunReport", "pr_title", "render_pr_body"]


def pr_title(report: RunReport) -> str:
    d = report.diagnosis
    what = f"{d.category} in {d.root_cause}" if d else "unexplained failure"
    if report.fixed:
        return f"rootloop: fix {what} ({report.service})"
    if report.status == "recovered":
        return f"rootloop: {report.service} recovered without a fix — {what}"
    if report.status == "not-reproduced":
        return f"rootloop: {report.service} — complaint not reproduced"
    return f"rootloop: {report.service} needs a human — {what}"


def render_pr_body(
    report: RunReport, redactor: Redactor | None = None, limit: int = BODY_LIMIT
) -> str:
    """The Markdown body; evidence is trimmed (with a note) until it fits ``limit``."""
    clean = (redactor or Redactor()).text
    body = ""
    for budget in _EVIDENCE_BUDGETS:
        body = clean(_Body(report, budget).render())
        if len(body) <= limit:
            return body
    note = "\n\n> **Trimmed:** the body was cut to fit GitHub's limit; see the HTML report.\n"
    keep = body[: limit - len(note)]
    if keep.count("```") % 2:
        keep = keep[: keep.rfind("```")]
    return keep + note


def md_cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    s = " ".join(str(text if text is not None else "").split())
    return s.replace("\\", "\\\\").replace("|", "\\|") or " "


def fenced(text: str, lang: str = "") -> str:
    """A code block whose fence is longer than any backtick run inside it."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def trim(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    cut = len(text) - budget
    return f"{text[:budget].rstrip()}\n… ({cut:,} more characters trimmed)"


_ICON = {
    Status.OK: "🟢",
    Status.UNKNOWN: "⚪",
    Status.DEGRADED: "🟡",
    Status.UNREACHABLE: "🔴",
    Status.CRITICAL: "🔴",
}


class _Body:
    def __init__(self, report: RunReport, budget: int) -> None:
        self.r = report
        self.budget = budget
        self.trimmed = False  # set when an evidence block was cut or left out

    def render(self) -> str:
        sections: list[Callable[[], str]] = [
            self.header,
            self.what_was_wrong,
            self.symptoms,
            self.why_stopped,
            self.suspects,
            self.reproduction,
            self.topology,
            self.evidence,
            self.history,
            self.verification,
            self.load_test,
            self.ui_test,
            self.prior,
            self.usage,
            self.human,
        ]
        parts = [s() for s in sections]
        parts.append(
            f"<sub>Opened by rootloop, run `{self.r.run_id}`. rootloop never merges: "
            "this PR is yours to review.</sub>"
        )
        return "\n\n".join(p for p in parts if p) + "\n"

    # -- sections ----------------------------------------------------------
    def header(self) -> str:
        r = self.r
        verdict = {
            "fixed": "✅ fixed and verified",
            "unverified": "⚠️ healthy now, fix not verified",
            "recovered": "🩹 recovered without a fix — no action credited",
            "not-reproduced": "🔍 not reproduced — nothing fixed",
            "escalated": "🛑 escalated — no verified fix",
            "paused": "⏸️ paused for approval",
            "refused": "⛔ refused to act",
            "failed": "❌ failed",
            "running": "⏳ running",
        }[r.verdict]
        meta = [
            f"run `{r.run_id}`",
            f"environment `{r.environment}`",
            f"{r.iterations} iteration{'s' if r.iterations != 1 else ''}",
        ]
        if r.branch:
            meta.append(f"branch `{r.branch}`")
        return f"## rootloop · {r.service} · {verdict}\n\n" + " · ".join(meta)

    def what_was_wrong(self) -> str:
        r, d = self.r, self.r.diagnosis
        if d is None and r.status == "not-reproduced":
            return (
                "### What was wrong\n\n"
                f"Nothing that rootloop could check on **{r.service}**'s map was wrong, and "
                "the complaint did not reproduce: nothing was changed, nothing is claimed "
                "fixed. What was checked is listed below."
            )
        if d is None:
            return (
                "### What was wrong\n\n"
                f"rootloop could not name a root cause for **{r.service}**. "
                "The findings below are what it saw."
            )
        hops = max(0, len(r.topology.path) - 1)
        where = (
            f"The symptoms showed in **{r.topology.path[0]}**; the root cause is **{d.root_cause}**"
            f", {hops} hop{'s' if hops != 1 else ''} away ({' → '.join(r.topology.path)})."
            if hops
            else f"The root cause is in **{d.root_cause}** itself."
        )
        text = (
            f"{d.summary.rstrip('.')}. {where} Category `{d.category}`, confidence "
            f"{d.confidence:.0%} ({d.reasoner} reasoner)."
        )
        last = r.context.current
        if r.fixed and last is not None and last.action:
            text += f" Fixed in iteration {last.iteration} by **{last.action}**, then verified" + (
                " and load-tested." if r.load_test else "."
            )
        elif r.status == "refused":
            text += " rootloop refused to change anything (see why below)."
        elif r.status == "recovered":
            text += (
                " The symptoms cleared, but not because of anything rootloop did: "
                "no action is credited with a fix."
            )
        return f"### What was wrong\n\n{text}"

    def symptoms(self) -> str:
        """The evidence behind "fixed": each entry symptom, and whether it cleared."""
        rows = self.r.symptom_rows()
        if not rows:
            return ""
        mark = {True: "✅ cleared", False: "❌ still bad", None: "— not re-checked"}
        table = ["| entry symptom | verdict | last seen |", "|---|---|---|"]
        table += [f"| {md_cell(x.symptom)} | {mark[x.cleared]} | {md_cell(x.now)} |" for x in rows]
        return "### Entry symptoms\n\n" + "\n".join(table)

    def suspects(self) -> str:
        """Where a human starts when rootloop did not act: ranked, with evidence and onset."""
        found = self.r.context.suspects
        if not found or self.r.fixed:
            return ""
        table = [
            "| # | suspect | evidence | onset | what rootloop would try |",
            "|---:|---|---|---|---|",
        ]
        for i, c in enumerate(found, 1):
            ev = "; ".join([*c.reasons, *c.evidence][:4]) or "—"
            onset = f"{c.onset:%Y-%m-%d %H:%M:%S} UTC" if c.onset else "unknown"
            table.append(
                f"| {i} | `{md_cell(c.node)}` | {md_cell(ev)} | {onset} | "
                f"{md_cell(c.would_try or 'look by hand: no runbook holds')} |"
            )
        return "### Ranked suspects\n\n" + "\n".join(table)

    def reproduction(self) -> str:
        lines = self.r.context.reproduction
        if not lines:
            return ""
        return "### What was checked to reproduce the complaint\n\n" + "\n".join(
            f"- {md_cell(x)}" for x in lines
        )

    def why_stopped(self) -> str:
        r = self.r
        if r.fixed:
            return ""
        reason = r.status_reason or "no reason recorded"
        lines = [f"### Why it stopped\n\n**{r.status}**: {reason}"]
        tried = [h for h in r.context.history if h.action]
        if tried:
            lines.append("\nWhat was tried:\n")
            lines += [
                f"- iteration {h.iteration}: {h.action} → {outcome_text(h.outcome)}: {h.result}"
                for h in tried
            ]
        else:
            lines.append("\nNo action was applied.")
        return "\n".join(lines)

    def topology(self) -> str:
        view: TopologyView = self.r.topology
        if not view.nodes:
            return ""
        legend = (
            "Thick red arrows: the path from the symptom to the root cause. "
            "🟢 ok · 🟡 degraded · 🔴 critical/unreachable · ⚪ unknown/unchecked."
        )
        return f"### Topology\n\n{fenced(render_mermaid(view), 'mermaid')}\n\n{legend}"

    def evidence(self) -> str:
        r = self.r
        out = ["### Evidence"]
        if r.diagnosis and r.diagnosis.evidence:
            out.append("\n".join(f"- {md_cell(e)}" for e in r.diagnosis.evidence))
        if r.diagnosis and len(r.diagnosis.candidates) > 1:
            rows = ["| candidate | score | why |", "|---|---:|---|"]
            for c in r.diagnosis.candidates[:5]:
                rows.append(
                    f"| {md_cell(c.node)} | {c.score:.2f} | {md_cell('; '.join(c.reasons))} |"
                )
            out.append("Root-cause candidates considered:\n\n" + "\n".join(rows))
        bad = sorted(
            (f for f in r.findings if f.status is not Status.OK),
            key=lambda f: (f.node != (r.topology.root_cause or ""), -f.status.severity),
        )
        if bad:
            out.append(self._findings_table(bad))
            out += [self._finding_detail(f) for f in bad if f.evidence]
        ok = [f.node for f in r.findings if f.status is Status.OK]
        if ok:
            out.append(f"Healthy: {', '.join(f'`{n}`' for n in ok)}.")
        if self.trimmed:
            what = f"{self.budget:,} characters per block" if self.budget else "nothing"
            out.append(
                f"> Evidence trimmed to {what} to fit GitHub's "
                "body limit; the HTML report has it whole."
            )
        return "\n\n".join(out) if len(out) > 1 else ""

    def _findings_table(self, findings: list[Finding]) -> str:
        rows = ["| node | status | skill | finding |", "|---|---|---|---|"]
        for f in findings:
            rows.append(
                f"| `{md_cell(f.node)}` | {_ICON[f.status]} {f.status.value} | {md_cell(f.skill)}"
                f" | {md_cell(f.summary)} |"
            )
        return "\n".join(rows)

    def _finding_detail(self, f: Finding) -> str:
        parts = [f"<details><summary><code>{_html(f.node)}</code> — {_html(f.summary)}</summary>"]
        if f.signals:
            sig = ", ".join(f"`{md_cell(str(s))}`" for s in f.signals if s.status is not Status.OK)
            if sig:
                parts.append(f"\nSignals: {sig}")
        if self.budget:
            for e in f.evidence:
                self.trimmed = self.trimmed or len(e.text) > self.budget
                parts.append(
                    f"\n**{md_cell(e.title)}** ({e.kind})\n\n{fenced(trim(e.text, self.budget))}"
                )
        elif f.evidence:
            self.trimmed = True
            parts.append(f"\n({len(f.evidence)} evidence block(s) left out to fit the limit.)")
        parts.append("\n</details>")
        return "\n".join(parts)

    def history(self) -> str:
        ctx = self.r.context
        if not ctx.history:
            return ""
        rows = [
            "| iteration | diagnosis | action | commit | CI | outcome | result |",
            "|---:|---|---|---|---|---|---|",
        ]
        for h in ctx.history:
            commit = f"`{h.commit[:7]}`" if h.commit else "—"
            rows.append(
                f"| {h.iteration} | {md_cell(h.diagnosis)} | {md_cell(h.action or '—')} | "
                f"{commit} | {md_cell(h.gha or '—')} | {outcome_text(h.outcome)} | "
                f"{md_cell(h.result)} |"
            )
        seed = json.dumps(ctx.seed_view(), indent=2, ensure_ascii=False)
        if not self.budget:
            seed = trim(seed, 4000)
        details = (
            "<details><summary>Debug context (the seed's JSON)</summary>\n\n"
            f"{fenced(seed, 'json')}\n\n</details>"
        )
        return "### Iterations\n\n" + "\n".join(rows) + "\n\n" + details

    def verification(self) -> str:
        v = self.r.verify
        if v is None:
            return ""
        head = "passed ✅" if v.passed else "failed ❌"
        rows = ["| check | result | detail |", "|---|---|---|"]
        for c in v.checks:
            rows.append(
                f"| {md_cell(c.name)} | {'✅' if c.passed else '❌'} | {md_cell(c.detail)} |"
            )
        return f"### Verification — {head}\n\n" + "\n".join(rows)

    def load_test(self) -> str:
        lt, spec = self.r.load_test, self.r.load_spec
        if lt is None:
            return ""
        head = "passed ✅" if lt.passed else "failed ❌"

        def limit(v: float | None, fmt: str) -> str:
            return fmt.format(v) if v is not None else "—"

        rows = [
            "| figure | measured | threshold |",
            "|---|---:|---:|",
            f"| requests | {lt.requests:,} at {lt.rate:g}/s over {lt.duration_s:.1f} s | |",
            f"| success ratio | {lt.success_ratio:.2%} ({lt.successes:,}/{lt.requests:,}) | "
            f"{limit(spec and spec.min_success_ratio, '≥ {:.2%}')} |",
            f"| p50 | {lt.p50_ms:.0f} ms | {limit(spec and spec.max_p50_ms, '≤ {:g} ms')} |",
            f"| p95 | {lt.p95_ms:.0f} ms | {limit(spec and spec.max_p95_ms, '≤ {:g} ms')} |",
            f"| p99 | {lt.p99_ms:.0f} ms | |",
        ]
        out = f"### Load test — {head}\n\n`{md_cell(lt.url)}`\n\n" + "\n".join(rows)
        if lt.reasons:
            out += "\n\n" + "\n".join(f"- {md_cell(x)}" for x in lt.reasons)
        return out

    def ui_test(self) -> str:
        ui = self.r.ui_test
        if ui is None:
            return ""
        head = "passed ✅" if ui.passed else "failed ❌"
        steps = [
            f"{i}. {'✅' if s.passed else '❌'} {md_cell(s.name)}"
            + (f" — {md_cell(s.detail)}" if s.detail else "")
            for i, s in enumerate(ui.steps, 1)
        ]
        shot = f"\n\nScreenshot: `{ui.screenshot}`" if ui.screenshot else ""
        return (
            f"### UI test — {head}\n\n`{md_cell(ui.url)}` in {ui.duration_s:.1f} s\n\n"
            + "\n".join(steps)
            + shot
        )

    def prior(self) -> str:
        p = self.r.prior
        if p is None or p.empty:
            return ""
        out = ["### Previous context (memory)"]
        if p.last_summary:
            who = f" (run `{p.last_run_id}`)" if p.last_run_id else ""
            out.append(f"Last investigation{who}: {md_cell(p.last_summary)}")
        if p.similar:
            out.append(
                "\n".join(
                    f"- similar: `{s.run_id}` — {md_cell(s.summary)}"
                    + (f" → {md_cell(s.outcome)}" if s.outcome else "")
                    for s in p.similar[:5]
                )
            )
        if p.failed_actions:
            out.append(
                "Not repeated (failed before):\n\n"
                + "\n".join(f"- {md_cell(a.description)}" for a in p.failed_actions[:10])
            )
        return "\n\n".join(out)

    def usage(self) -> str:
        u = self.r.usage
        if u is None or u.empty:
            return ""
        items = [f"{k.replace('_', ' ')}: {v}" for k, v in u.model_dump().items() if v]
        return "### Model usage\n\n" + " · ".join(md_cell(i) for i in items)

    def human(self) -> str:
        if not self.r.human_checks:
            return ""
        return "### What a human must check\n\n" + "\n".join(
            f"- [ ] {c}" for c in self.r.human_checks
        )


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
