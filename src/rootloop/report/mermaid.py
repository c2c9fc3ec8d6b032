"""The topology as a Mermaid flowchart, for PR bodies (GitHub renders it).

Node ids are generated (``n0``, ``n1``…) so no name can break the syntax; labels
are quoted with Mermaid's entity escapes. Status is a node class, the root
cause gets an extra class, and the symptom→root-cause path is a ``linkStyle``.
"""

from __future__ import annotations

from rootloop.models import Status
from rootloop.report.model import TopologyView

#: fill, stroke, text colour per status class (None = not checked)
STATUS_COLOURS: dict[str, tuple[str, str, str]] = {
    "ok": ("#e6f4ea", "#1e8e3e", "#0d3b1e"),
    "unknown": ("#f1f3f4", "#80868b", "#202124"),
    "degraded": ("#fef7e0", "#f29900", "#5c3b00"),
    "unreachable": ("#fce8e6", "#c5221f", "#5c0f0d"),
    "critical": ("#fce8e6", "#c5221f", "#5c0f0d"),
    "unchecked": ("#ffffff", "#bdc1c6", "#5f6368"),
}
PATH_COLOUR = "#d93025"

_ESCAPES = {
    "&": "#amp;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
    "[": "#91;",
    "]": "#93;",
    "{": "#123;",
    "}": "#125;",
    "|": "#124;",
    "`": "#96;",
}


def escape_label(text: str) -> str:
    """Make any text safe inside a quoted Mermaid label."""
    text = " ".join(text.split())
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def status_class(status: Status | None) -> str:
    return "unchecked" if status is None else status.value


def render_mermaid(view: TopologyView, summary_chars: int = 0) -> str:
    """A ``flowchart LR`` of the view; ``summary_chars`` > 0 adds each node's summary."""
    ids = {n.name: f"n{i}" for i, n in enumerate(view.nodes)}
    lines = ["flowchart LR"]
    for n in view.nodes:
        parts = [f"<b>{escape_label(n.name)}</b>"]
        meta = " · ".join(x for x in (n.type, status_class(n.status)) if x)
        parts.append(escape_label(meta))
        if n.root_cause:
            parts.append("⚠ root cause")
        if summary_chars and n.summary and n.status not in (None, Status.OK):
            s = n.summary if len(n.summary) <= summary_chars else n.summary[: summary_chars - 1]
            parts.append(f"<i>{escape_label(s)}</i>")
        label = "<br/>".join(parts)
        shape = ('(["', '"])') if n.role == "service" else ('["', '"]')
        lines.append(f"  {ids[n.name]}{shape[0]}{label}{shape[1]}:::{status_class(n.status)}")
    path_links = []
    for i, e in enumerate(view.edges):
        arrow = "==>" if e.on_path else "-->"
        lines.append(f"  {ids[e.source]} {arrow} {ids[e.target]}")
        if e.on_path:
            path_links.append(str(i))
    for cls, (fill, stroke, colour) in STATUS_COLOURS.items():
        lines.append(f"  classDef {cls} fill:{fill},stroke:{stroke},color:{colour}")
    lines.append(f"  classDef rootcause stroke:{PATH_COLOUR},stroke-width:4px")
    roots = [ids[n.name] for n in view.nodes if n.root_cause]
    if roots:
        lines.append(f"  class {','.join(roots)} rootcause")
    if path_links:
        lines.append(f"  linkStyle {','.join(path_links)} stroke:{PATH_COLOUR},stroke-width:3px")
    return "\n".join(lines)
