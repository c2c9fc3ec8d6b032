"""The HTML report: one self-contained file, the PR's content with the map drawn.

No script, no stylesheet, font or image from the network: the styles are
inline, the graph is SVG generated here, and the UI test's screenshot (when
there is one) is embedded as a data URI. Everything but that screenshot passes
through the redactor before it is written.
"""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path

from rootloop.models import Finding, Outcome, Status
from rootloop.redact import Redactor
from rootloop.report.mermaid import STATUS_COLOURS, status_class
from rootloop.report.model import RunReport, outcome_text
from rootloop.report.svg import render_svg

MAX_SCREENSHOT_BYTES = 3_000_000
_SHOT = "@@ROOTLOOP_SCREENSHOT@@"

_VERDICT = {
    "fixed": ("Fixed and verified", "#1e8e3e"),
    "unverified": ("Healthy now, fix not verified", "#e37400"),
    "recovered": ("Recovered without a fix", "#e37400"),
    "not-reproduced": ("Not reproduced", "#5f6368"),
    "escalated": ("Escalated: no verified fix", "#c5221f"),
    "paused": ("Paused for approval", "#e37400"),
    "refused": ("Refused to act", "#c5221f"),
    "failed": ("Failed", "#c5221f"),
    "running": ("Running", "#1a73e8"),
}

CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f6f7f9;color:#202124;
 font:14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}
main{max-width:1320px;margin:0 auto;padding:24px 28px 48px}
header.top{background:#fff;border-bottom:1px solid #e3e5e8;padding:20px 28px}
header.top .inner{max-width:1320px;margin:0 auto;display:flex;gap:18px;align-items:center;
 flex-wrap:wrap}
h1{font-size:22px;margin:0;font-weight:650}
h2{font-size:15px;margin:0 0 12px;font-weight:650;letter-spacing:.2px}
.badge{display:inline-block;padding:4px 12px;border-radius:999px;color:#fff;font-weight:600;
 font-size:13px}
.meta{color:#5f6368;font-size:13px}
.meta code{font-size:12px}
code,pre{font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace}
code{background:#f1f3f4;border-radius:4px;padding:1px 5px;font-size:12.5px}
.card{background:#fff;border:1px solid #e3e5e8;border-radius:12px;padding:18px 20px;
 margin-top:18px}
.lead{font-size:15.5px;line-height:1.6;margin:0}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:14px;
 margin-top:18px}
.tile{background:#fff;border:1px solid #e3e5e8;border-radius:12px;padding:14px 16px}
.tile .k{color:#5f6368;font-size:12px;text-transform:uppercase;letter-spacing:.6px}
.tile .v{font-size:22px;font-weight:650;margin-top:2px}
.tile .s{color:#5f6368;font-size:12.5px}
.good{color:#1e8e3e}.bad{color:#c5221f}.warn{color:#e37400}
.graph{overflow-x:auto}
.graph svg{display:block;margin:0 auto;max-width:100%;height:auto}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:18px}
.cols3{display:grid;grid-template-columns:repeat(3,1fr);gap:18px}
.cols>.card,.cols3>.card{margin-top:18px}
@media (max-width:980px){.cols,.cols3{grid-template-columns:1fr}}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th{text-align:left;color:#5f6368;font-weight:600;font-size:12px;text-transform:uppercase;
 letter-spacing:.5px;border-bottom:1px solid #e3e5e8;padding:8px 10px}
td{border-bottom:1px solid #f1f3f4;padding:9px 10px;vertical-align:top}
td.num,th.num{text-align:right;white-space:nowrap}
tr.pass td.res{color:#1e8e3e;font-weight:600}
tr.fail td.res{color:#c5221f;font-weight:600}
tr.pending td.res{color:#e37400;font-weight:600}
ul.checks{list-style:none;padding:0;margin:0}
ul.checks li{padding:7px 0 7px 28px;position:relative;border-bottom:1px solid #f1f3f4}
ul.checks li:last-child{border-bottom:0}
ul.checks li:before{content:'';position:absolute;left:2px;top:10px;width:14px;height:14px;
 border:2px solid #80868b;border-radius:3px}
ul.ev{margin:0;padding-left:18px}
ul.ev li{margin:4px 0}
.findings{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px}
.finding{border:1px solid #e3e5e8;border-left:6px solid #bdc1c6;border-radius:10px;
 padding:12px 14px;background:#fff;min-width:0}
.finding .hd{display:flex;justify-content:space-between;gap:8px;align-items:baseline}
.finding .node{font-weight:650}
.finding .skill{color:#80868b;font-size:12px}
.finding .sum{margin:6px 0}
.pill{display:inline-block;border-radius:999px;padding:1px 9px;font-size:11.5px;
 font-weight:600;border:1px solid}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0}
.chip{background:#f1f3f4;border-radius:6px;padding:1px 7px;font-size:12px;
 font-family:ui-monospace,Menlo,Consolas,monospace}
.chip.badsig{background:#fce8e6;color:#a50e0e}
details{margin-top:6px}
summary{cursor:pointer;color:#1a73e8;font-size:13px}
pre{background:#f8f9fa;border:1px solid #eceef0;border-radius:8px;padding:10px 12px;
 overflow-x:auto;font-size:12px;line-height:1.45;margin:8px 0 0;max-height:360px}
.steps{margin:0;padding-left:20px}
.steps li{margin:5px 0}
.ok-mark{color:#1e8e3e;font-weight:700}.ko-mark{color:#c5221f;font-weight:700}
.shot{margin-top:12px;max-width:100%;border:1px solid #e3e5e8;border-radius:8px}
.muted{color:#5f6368}
footer{color:#80868b;font-size:12.5px;margin-top:28px;text-align:center}
.stop{border-left:6px solid #c5221f}
"""


def write_html(report: RunReport, path: str | Path, redactor: Redactor | None = None) -> Path:
    """Write the report to ``path`` (parents created); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report, redactor), encoding="utf-8")
    return out


def render_html(report: RunReport, redactor: Redactor | None = None) -> str:
    r = report
    body = [
        _header(r),
        "<main>",
        _lead(r),
        _tiles(r),
        _why_stopped(r),
        _symptoms(r),
        _suspects(r),
        _reproduction(r),
        _graph(r),
        '<div class="cols">',
        _diagnosis(r),
        _human(r),
        "</div>",
        _history(r),
        _findings(r),
        '<div class="cols3">',
        _verify(r),
        _load(r),
        _ui(r),
        "</div>",
        _prior_and_usage(r),
        f"<footer>rootloop run <code>{escape(r.run_id)}</code> · generated "
        f"{r.finished_at:%Y-%m-%d %H:%M UTC} · rootloop never merges: the PR is yours to "
        "review.</footer>",
        "</main>",
    ]
    doc = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>rootloop · {escape(r.service)} · {escape(r.run_id)}</title>"
        f"<style>{CSS}</style></head><body>" + "\n".join(b for b in body if b) + "</body></html>"
    )
    doc = (redactor or Redactor()).text(doc)
    return doc.replace(_SHOT, _screenshot_uri(r))


# -- sections ---------------------------------------------------------------
def _header(r: RunReport) -> str:
    label, colour = _VERDICT[r.verdict]
    meta = [
        f"run <code>{escape(r.run_id)}</code>",
        f"environment <code>{escape(r.environment)}</code>",
        f"started {r.started_at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if r.branch:
        meta.append(f"branch <code>{escape(r.branch)}</code>")
    if r.pr:
        meta.append(f"PR <code>{escape(r.pr)}</code>")
    return (
        '<header class="top"><div class="inner">'
        f"<h1>rootloop · {escape(r.service)}</h1>"
        f'<span class="badge" style="background:{colour}">{escape(label)}</span>'
        f'<span class="meta">{" · ".join(meta)}</span></div></header>'
    )


def _lead(r: RunReport) -> str:
    d = r.diagnosis
    if d is None:
        text = f"rootloop could not name a root cause for <strong>{escape(r.service)}</strong>."
    else:
        path = r.topology.path
        hops = max(0, len(path) - 1)
        text = f"{escape(d.summary.rstrip('.'))}. "
        if hops:
            text += (
                f"The symptoms showed in <strong>{escape(path[0])}</strong>; the root cause is "
                f"<strong>{escape(d.root_cause)}</strong>, {hops} hop{'s' if hops != 1 else ''} "
                f"away ({escape(' → '.join(path))}). "
            )
        else:
            text += f"The root cause is in <strong>{escape(d.root_cause)}</strong> itself. "
        last = r.context.current
        if r.fixed and last is not None and last.action:
            text += (
                f"Fixed in iteration {last.iteration} by <strong>{escape(last.action)}</strong>"
                + (", verified and load-tested." if r.load_test else ", verified.")
            )
        elif r.status == "recovered":
            text += (
                "The symptoms cleared, but not because of anything rootloop did: "
                "<strong>no action is credited with a fix</strong>."
            )
    return f'<section class="card"><h2>What was wrong</h2><p class="lead">{text}</p></section>'


def _tile(key: str, value: str, sub: str = "", cls: str = "") -> str:
    return (
        f'<div class="tile"><div class="k">{escape(key)}</div>'
        f'<div class="v {cls}">{value}</div><div class="s">{sub}</div></div>'
    )


def _tiles(r: RunReport) -> str:
    d = r.diagnosis
    tiles = [
        _tile(
            "Root cause",
            escape(d.root_cause) if d else "unknown",
            escape(d.category) if d else "",
            "bad" if d else "",
        ),
        _tile(
            "Confidence",
            f"{d.confidence:.0%}" if d else "—",
            f"{escape(d.reasoner)} reasoner" if d else "",
        ),
        _tile("Iterations", str(r.iterations), _attempts(r)),
    ]
    if r.verify:
        passed = sum(c.passed for c in r.verify.checks)
        tiles.append(
            _tile(
                "Verification" if r.status != "recovered" else "State now (no fix)",
                "passed" if r.verify.passed else "failed",
                f"{passed}/{len(r.verify.checks)} checks",
                "good" if r.verify.passed else "bad",
            )
        )
    if r.load_test:
        lt, spec = r.load_test, r.load_spec
        tiles.append(
            _tile(
                "Success ratio",
                f"{lt.success_ratio:.2%}",
                f"{lt.successes:,}/{lt.requests:,} requests"
                + (f" · min {spec.min_success_ratio:.0%}" if spec else ""),
                _ok(spec is None or lt.success_ratio >= spec.min_success_ratio),
            )
        )
        tiles.append(
            _tile(
                "p95 latency",
                f"{lt.p95_ms:.0f} ms",
                f"p50 {lt.p50_ms:.0f} · p99 {lt.p99_ms:.0f}"
                + (f" · max {spec.max_p95_ms:g}" if spec else ""),
                _ok(spec is None or lt.p95_ms <= spec.max_p95_ms),
            )
        )
    if r.ui_test:
        ok = sum(s.passed for s in r.ui_test.steps)
        tiles.append(
            _tile(
                "UI test",
                "passed" if r.ui_test.passed else "failed",
                f"{ok}/{len(r.ui_test.steps)} steps",
                _ok(r.ui_test.passed),
            )
        )
    return f'<div class="tiles">{"".join(tiles)}</div>'


def _attempts(r: RunReport) -> str:
    failed = sum(1 for h in r.context.history if h.failed)
    return f"{failed} failed attempt{'s' if failed != 1 else ''}" if failed else "first try"


def _ok(flag: bool) -> str:
    return "good" if flag else "bad"


def _why_stopped(r: RunReport) -> str:
    if r.fixed:
        return ""
    tried = [h for h in r.context.history if h.action]
    items = "".join(
        f"<li>iteration {h.iteration}: {escape(h.action)} → "
        f"<strong>{escape(outcome_text(h.outcome))}</strong>: {escape(h.result)}</li>"
        for h in tried
    )
    return (
        '<section class="card stop"><h2>Why it stopped</h2>'
        f"<p><strong>{escape(r.status)}</strong>: {escape(r.status_reason or 'no reason')}</p>"
        + (f"<p class='muted'>What was tried:</p><ul class='ev'>{items}</ul>" if items else "")
        + "</section>"
    )


def _symptoms(r: RunReport) -> str:
    """Each entry symptom and whether the last verification saw it cleared: the evidence
    a "fixed" headline rests on."""
    rows = r.symptom_rows()
    if not rows:
        return ""
    mark = {True: ("pass", "cleared"), False: ("fail", "still bad"), None: ("", "not re-checked")}
    body = "".join(
        f'<tr class="{mark[x.cleared][0]}"><td>{escape(x.symptom)}</td>'
        f"<td>{mark[x.cleared][1]}</td><td>{escape(x.now)}</td></tr>"
        for x in rows
    )
    return (
        '<section class="card"><h2>Entry symptoms</h2><table><tr><th>symptom</th>'
        f"<th>verdict</th><th>last seen</th></tr>{body}</table></section>"
    )


def _suspects(r: RunReport) -> str:
    if not r.context.suspects or r.fixed:
        return ""
    items = []
    for c in r.context.suspects:
        ev = "; ".join([*c.reasons, *c.evidence][:4]) or "—"
        onset = f"{c.onset:%Y-%m-%d %H:%M:%S} UTC" if c.onset else "unknown"
        would = c.would_try or "look by hand: no runbook holds"
        items.append(
            f"<li><strong>{escape(c.node)}</strong> (score {c.score:.2f}, onset {onset}): "
            f"{escape(ev)}<br><span class='muted'>would try: {escape(would)}</span></li>"
        )
    return (
        '<section class="card stop"><h2>Ranked suspects</h2><ol class="ev">'
        + "".join(items)
        + "</ol></section>"
    )


def _reproduction(r: RunReport) -> str:
    if not r.context.reproduction:
        return ""
    items = "".join(f"<li>{escape(x)}</li>" for x in r.context.reproduction)
    return (
        '<section class="card"><h2>What was checked to reproduce the complaint</h2>'
        f'<ul class="ev">{items}</ul></section>'
    )


def _graph(r: RunReport) -> str:
    if not r.topology.nodes:
        return ""
    return (
        '<section class="card"><h2>Topology</h2>'
        f'<div class="graph">{render_svg(r.topology)}</div></section>'
    )


def _diagnosis(r: RunReport) -> str:
    d = r.diagnosis
    if d is None:
        return '<section class="card"><h2>Diagnosis</h2><p class="muted">none</p></section>'
    ev = "".join(f"<li>{escape(e)}</li>" for e in d.evidence)
    out = [
        '<section class="card"><h2>Diagnosis</h2>',
        f"<p><strong>{escape(d.root_cause)}</strong> · <code>{escape(d.category)}</code> · "
        f"confidence {d.confidence:.0%}</p>",
    ]
    if ev:
        out.append(f'<ul class="ev">{ev}</ul>')
    if d.candidates:
        rows = "".join(
            f"<tr><td>{escape(c.node)}</td><td class='num'>{c.score:.2f}</td>"
            f"<td>{escape('; '.join(c.reasons))}</td></tr>"
            for c in d.candidates[:6]
        )
        out.append(
            "<p class='muted' style='margin:14px 0 4px'>Candidates considered</p>"
            "<table><tr><th>node</th><th class='num'>score</th><th>why</th></tr>"
            f"{rows}</table>"
        )
    out.append("</section>")
    return "".join(out)


def _human(r: RunReport) -> str:
    items = "".join(f"<li>{_code_spans(c)}</li>" for c in r.human_checks)
    return (
        '<section class="card"><h2>What a human must check</h2>'
        f'<ul class="checks">{items}</ul></section>'
    )


def _code_spans(text: str) -> str:
    """Escape, then turn Markdown `code` spans into <code>."""
    parts = escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _history(r: RunReport) -> str:
    ctx = r.context
    if not ctx.history:
        return ""
    rows = []
    for h in ctx.history:
        cls = "pending" if h.outcome is None else "pass" if h.outcome is Outcome.FIXED else "fail"
        rows.append(
            f'<tr class="{cls}"><td class="num">{h.iteration}</td><td>{escape(h.diagnosis)}</td>'
            f"<td>{escape(h.action or '—')}</td>"
            f"<td>{f'<code>{escape(h.commit[:7])}</code>' if h.commit else '—'}</td>"
            f"<td>{escape(h.gha or '—')}</td><td>{escape(outcome_text(h.outcome))}</td>"
            f"<td class='res'>{escape(h.result)}</td></tr>"
        )
    seed = json.dumps(ctx.seed_view(), indent=2, ensure_ascii=False)
    return (
        '<section class="card"><h2>Iterations</h2><table><tr><th class="num">#</th>'
        "<th>diagnosis</th><th>action</th><th>commit</th><th>CI</th><th>outcome</th>"
        "<th>result</th></tr>"
        + "".join(rows)
        + "</table><details><summary>Debug context (the seed's JSON)</summary>"
        f"<pre>{escape(seed)}</pre></details></section>"
    )


def _findings(r: RunReport) -> str:
    if not r.findings:
        return ""
    root = r.topology.root_cause or ""
    ordered = sorted(
        r.findings,
        key=lambda f: (f.status is Status.OK, not f.node.startswith(root), -f.status.severity),
    )
    cards = "".join(_finding(f) for f in ordered)
    bad = sum(1 for f in r.findings if f.status is not Status.OK)
    return (
        f'<section class="card"><h2>Findings <span class="muted" style="font-weight:400">'
        f"· {bad} of {len(r.findings)} checks anomalous</span></h2>"
        f'<div class="findings">{cards}</div></section>'
    )


def _finding(f: Finding) -> str:
    cls = status_class(f.status)
    fill, stroke, colour = STATUS_COLOURS[cls]
    chips = "".join(
        f'<span class="chip{" badsig" if s.status is not Status.OK else ""}">{escape(str(s))}'
        "</span>"
        for s in f.signals
    )
    ev = "".join(
        f"<details><summary>{escape(e.title)} <span class='muted'>({e.kind})</span></summary>"
        f"<pre>{escape(e.text)}</pre></details>"
        for e in f.evidence
    )
    suspects = "".join(
        f"<div class='muted' style='font-size:12.5px'>suspects <strong>{escape(s.node)}</strong>:"
        f" {escape(s.reason)}</div>"
        for s in f.suspects
    )
    return (
        f'<div class="finding" style="border-left-color:{stroke}">'
        f'<div class="hd"><span class="node">{escape(f.node)}</span>'
        f'<span class="pill" style="background:{fill};color:{colour};border-color:{stroke}">'
        f"{escape(f.status.value)}</span></div>"
        f'<div class="skill">{escape(f.skill)} · {f.duration_ms:.0f} ms</div>'
        f'<div class="sum">{escape(f.summary)}</div>'
        + (f'<div class="chips">{chips}</div>' if chips else "")
        + suspects
        + ev
        + "</div>"
    )


def _mark(ok: bool) -> str:
    return '<span class="ok-mark">✓</span>' if ok else '<span class="ko-mark">✗</span>'


def _verify(r: RunReport) -> str:
    v = r.verify
    if v is None:
        return ""
    rows = "".join(
        f"<tr><td>{_mark(c.passed)} {escape(c.name)}</td><td>{escape(c.detail)}</td></tr>"
        for c in v.checks
    )
    head = "passed" if v.passed else "failed"
    return (
        f'<section class="card"><h2>Verification — <span class="{_ok(v.passed)}">{head}</span>'
        f"</h2><table>{rows}</table></section>"
    )


def _load(r: RunReport) -> str:
    lt, spec = r.load_test, r.load_spec
    if lt is None:
        return ""

    def row(name: str, value: str, limit: str = "", ok: bool | None = None) -> str:
        mark = "" if ok is None else _mark(ok) + " "
        return (
            f"<tr><td>{mark}{name}</td><td class='num'>{value}</td>"
            f"<td class='num muted'>{limit}</td></tr>"
        )

    rows = [
        row("requests", f"{lt.requests:,}", f"{lt.rate:g}/s · {lt.duration_s:.1f} s"),
        row(
            "success ratio",
            f"{lt.success_ratio:.2%}",
            f"≥ {spec.min_success_ratio:.2%}" if spec else "",
            None if spec is None else lt.success_ratio >= spec.min_success_ratio,
        ),
        row(
            "p50",
            f"{lt.p50_ms:.0f} ms",
            f"≤ {spec.max_p50_ms:g} ms" if spec else "",
            None if spec is None else lt.p50_ms <= spec.max_p50_ms,
        ),
        row(
            "p95",
            f"{lt.p95_ms:.0f} ms",
            f"≤ {spec.max_p95_ms:g} ms" if spec else "",
            None if spec is None else lt.p95_ms <= spec.max_p95_ms,
        ),
        row("p99", f"{lt.p99_ms:.0f} ms"),
    ]
    reasons = "".join(f"<li>{escape(x)}</li>" for x in lt.reasons)
    head = "passed" if lt.passed else "failed"
    return (
        f'<section class="card"><h2>Load test — <span class="{_ok(lt.passed)}">{head}</span>'
        f'</h2><div class="muted" style="font-size:12.5px;margin-bottom:6px">'
        f"<code>{escape(lt.url)}</code></div><table>{''.join(rows)}</table>"
        + (f'<ul class="ev bad">{reasons}</ul>' if reasons else "")
        + "</section>"
    )


def _ui(r: RunReport) -> str:
    ui = r.ui_test
    if ui is None:
        return ""
    steps = "".join(
        f"<li>{_mark(s.passed)} {escape(s.name)}"
        + (f" <span class='muted'>— {escape(s.detail)}</span>" if s.detail else "")
        + "</li>"
        for s in ui.steps
    )
    head = "passed" if ui.passed else "failed"
    shot = f'<img class="shot" alt="screenshot" src="{_SHOT}">' if _screenshot_uri(r) else ""
    return (
        f'<section class="card"><h2>UI test — <span class="{_ok(ui.passed)}">{head}</span></h2>'
        f'<div class="muted" style="font-size:12.5px;margin-bottom:6px"><code>{escape(ui.url)}'
        f"</code> · {ui.duration_s:.1f} s</div>"
        f'<ol class="steps">{steps}</ol>{shot}</section>'
    )


def _screenshot_uri(r: RunReport) -> str:
    shot = r.ui_test.screenshot if r.ui_test else None
    if not shot:
        return ""
    path = Path(shot)
    try:
        if not path.is_file() or path.stat().st_size > MAX_SCREENSHOT_BYTES:
            return ""
        data = path.read_bytes()
    except OSError:
        return ""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _prior_and_usage(r: RunReport) -> str:
    out = []
    p = r.prior
    if p is not None and not p.empty:
        items = []
        if p.last_summary:
            items.append(f"<li>last investigation: {escape(p.last_summary)}</li>")
        items += [
            f"<li>similar <code>{escape(s.run_id)}</code>: {escape(s.summary)}"
            + (f" → {escape(s.outcome)}" if s.outcome else "")
            + "</li>"
            for s in p.similar[:5]
        ]
        items += [
            f"<li>not repeated (failed before): {escape(a.description)}</li>"
            for a in p.failed_actions[:10]
        ]
        out.append(
            '<section class="card"><h2>Previous context (memory)</h2>'
            f'<ul class="ev">{"".join(items)}</ul></section>'
        )
    u = r.usage
    if u is not None and not u.empty:
        items = " · ".join(
            f"{escape(k.replace('_', ' '))}: <strong>{escape(str(v))}</strong>"
            for k, v in u.model_dump().items()
            if v
        )
        out.append(f'<section class="card"><h2>Model usage</h2><p>{items}</p></section>')
    return "".join(out)
