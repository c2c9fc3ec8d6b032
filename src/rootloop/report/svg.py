"""The topology drawn as inline SVG: a layered left→right layout, no JavaScript.

Columns come from ``TopologyView.layers`` (each node one column right of its
furthest caller: upstream → service → downstream → their downstream). Within a
column, nodes are ordered by the mean position of their neighbours (two
barycentre sweeps), which keeps edges short and mostly uncrossed on maps of
this size. Colours follow the node's status; the root cause and the path to
it are drawn in red on top of everything else.
"""

from __future__ import annotations

from html import escape

from rootloop.report.mermaid import PATH_COLOUR, STATUS_COLOURS, status_class
from rootloop.report.model import TopologyView, TopoNode

W, H = 184, 70  # node box
COL_GAP, ROW_GAP = 74, 24
PAD_X, PAD_TOP, PAD_BOTTOM = 24, 58, 54
EDGE_COLOUR = "#9aa0a6"


def _order(view: TopologyView, layers: dict[str, int]) -> dict[int, list[str]]:
    cols: dict[int, list[str]] = {}
    for n in view.nodes:
        cols.setdefault(layers[n.name], []).append(n.name)
    preds: dict[str, list[str]] = {n.name: [] for n in view.nodes}
    succs: dict[str, list[str]] = {n.name: [] for n in view.nodes}
    for e in view.edges:
        preds[e.target].append(e.source)
        succs[e.source].append(e.target)
    keys = sorted(cols)
    for order, neighbours in ((keys[1:], preds), (keys[-2::-1], succs), (keys[1:], preds)):
        for k in order:
            _sort_column(cols, k, neighbours, layers)
    return cols


def _sort_column(
    cols: dict[int, list[str]], k: int, neighbours: dict[str, list[str]], layers: dict[str, int]
) -> None:
    """Order column ``k`` by the mean centred row of each node's neighbours elsewhere."""
    pos = {name: i - (len(c) - 1) / 2 for c in cols.values() for i, name in enumerate(c)}

    def bary(name: str) -> float:
        ns = [pos[m] for m in neighbours[name] if m in pos and layers[m] != k]
        return sum(ns) / len(ns) if ns else pos[name]

    cols[k].sort(key=lambda name: (bary(name), pos[name]))


def _column_titles(view: TopologyView, cols: dict[int, list[str]]) -> dict[int, str]:
    svc_col = next((k for k, names in cols.items() if view.service in names), None)
    titles = {}
    for k in cols:
        if svc_col is None:
            titles[k] = ""
        elif k == svc_col:
            titles[k] = "SERVICE"
        elif k < svc_col:
            depth = svc_col - k
            titles[k] = "UPSTREAM" if depth == 1 else f"UPSTREAM +{depth - 1}"
        else:
            depth = k - svc_col
            titles[k] = "DOWNSTREAM" if depth == 1 else f"DOWNSTREAM +{depth - 1}"
    return titles


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _node(n: TopoNode, x: float, y: float) -> str:
    cls = status_class(n.status)
    fill, stroke, colour = STATUS_COLOURS[cls]
    sw = 1.5
    out = [f'<g class="node" data-node="{escape(n.name)}">']
    tip = f"{n.name} ({n.type}) — {cls}" + (f": {n.summary}" if n.summary else "")
    out.append(f"<title>{escape(tip)}</title>")
    if n.root_cause:
        out.append(
            f'<rect x="{x - 5}" y="{y - 5}" width="{W + 10}" height="{H + 10}" rx="14" '
            f'fill="none" stroke="{PATH_COLOUR}" stroke-width="3" opacity="0.9"/>'
        )
    if n.role == "service":
        sw = 2.5
        stroke = "#1a73e8" if not n.root_cause else stroke
    out.append(
        f'<rect x="{x}" y="{y}" width="{W}" height="{H}" rx="10" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{sw}"/>'
    )
    out.append(
        f'<rect x="{x}" y="{y}" width="6" height="{H}" rx="3" fill="{stroke}" opacity="0.85"/>'
    )
    name = escape(_clip(n.name, 20))
    out.append(
        f'<text x="{x + 16}" y="{y + 22}" font-size="14" font-weight="600" '
        f'fill="#202124">{name}</text>'
    )
    meta = " · ".join(p for p in (n.type, cls) if p)
    out.append(
        f'<text x="{x + 16}" y="{y + 40}" font-size="11.5" fill="{colour}">{escape(meta)}</text>'
    )
    if n.latency_ms is not None:
        out.append(
            f'<text x="{x + W - 10}" y="{y + 40}" font-size="11" fill="#5f6368" '
            f'text-anchor="end">{n.latency_ms:.0f} ms</text>'
        )
    if n.summary:
        out.append(
            f'<text x="{x + 16}" y="{y + 57}" font-size="11" fill="#5f6368">'
            f"{escape(_clip(n.summary, 26))}</text>"
        )
    if n.root_cause:
        bw = 92
        bx, by = x + W - bw - 8, y - 14
        out.append(
            f'<rect x="{bx}" y="{by}" width="{bw}" height="20" rx="10" fill="{PATH_COLOUR}"/>'
            f'<text x="{bx + bw / 2}" y="{by + 14}" font-size="10.5" font-weight="700" '
            f'fill="#fff" text-anchor="middle" letter-spacing="0.6">ROOT CAUSE</text>'
        )
    out.append("</g>")
    return "".join(out)


def _edge(x1: float, y1: float, x2: float, y2: float, on_path: bool) -> str:
    if x2 > x1:
        dx = max(40.0, (x2 - x1) / 2)
        d = f"M{x1},{y1} C{x1 + dx},{y1} {x2 - dx},{y2} {x2},{y2}"
    else:  # same or earlier column (rare): loop around below
        d = f"M{x1},{y1} C{x1 + 80},{y1 + 90} {x2 - 80},{y2 + 90} {x2},{y2}"
    if on_path:
        return (
            f'<path d="{d}" fill="none" stroke="{PATH_COLOUR}" stroke-width="3.5" '
            f'marker-end="url(#arrow-path)"/>'
        )
    return (
        f'<path d="{d}" fill="none" stroke="{EDGE_COLOUR}" stroke-width="1.6" '
        f'marker-end="url(#arrow)"/>'
    )


def render_svg(view: TopologyView) -> str:
    """A standalone ``<svg>`` element of the view (inline in HTML, or a .svg file)."""
    if not view.nodes:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"></svg>'
    layers = view.layers()
    cols = _order(view, layers)
    keys = sorted(cols)
    first = keys[0]
    tallest = max(len(c) for c in cols.values())
    inner_h = tallest * H + (tallest - 1) * ROW_GAP
    graph_w = PAD_X * 2 + len(keys) * W + (len(keys) - 1) * COL_GAP
    width = max(graph_w, LEGEND_WIDTH)
    shift = (width - graph_w) / 2  # centre the graph when the legend is the wider
    height = PAD_TOP + inner_h + PAD_BOTTOM
    pos: dict[str, tuple[float, float]] = {}
    for k, names in cols.items():
        col_h = len(names) * H + (len(names) - 1) * ROW_GAP
        y0 = PAD_TOP + (inner_h - col_h) / 2
        x = shift + PAD_X + (k - first) * (W + COL_GAP)
        for i, name in enumerate(names):
            pos[name] = (x, y0 + i * (H + ROW_GAP))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-label="topology of {escape(view.service)}" '
        "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\">",
        "<defs>",
        _marker("arrow", EDGE_COLOUR),
        _marker("arrow-path", PATH_COLOUR),
        "</defs>",
    ]
    for k, title in _column_titles(view, cols).items():
        x = shift + PAD_X + (k - first) * (W + COL_GAP)
        parts.append(
            f'<text x="{x + W / 2}" y="26" font-size="11" font-weight="700" fill="#80868b" '
            f'text-anchor="middle" letter-spacing="1.2">{title}</text>'
        )
    for on_path in (False, True):  # the path on top
        for e in view.edges:
            if e.on_path != on_path or e.source not in pos or e.target not in pos:
                continue
            (sx, sy), (tx, ty) = pos[e.source], pos[e.target]
            parts.append(_edge(sx + W, sy + H / 2, tx - 3, ty + H / 2, on_path))
    for n in view.nodes:
        x, y = pos[n.name]
        parts.append(_node(n, x, y))
    parts.append(_legend(height - 22))
    parts.append("</svg>")
    return "\n".join(parts)


def _marker(mid: str, colour: str) -> str:
    return (
        f'<marker id="{mid}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{colour}"/></marker>'
    )


LEGEND_ITEMS = ("ok", "degraded", "critical / unreachable", "unknown", "not checked")
LEGEND_PATH = "path from the symptom to the root cause"
LEGEND_WIDTH = (
    PAD_X * 2 + sum(36 + 6.3 * len(label) for label in LEGEND_ITEMS) + 40 + 6.3 * len(LEGEND_PATH)
)


def _legend(y: float) -> str:
    items = [
        ("ok", "ok"),
        ("degraded", "degraded"),
        ("critical", "critical / unreachable"),
        ("unknown", "unknown"),
        ("unchecked", "not checked"),
    ]
    out, x = [], PAD_X
    for cls, label in items:
        fill, stroke, _ = STATUS_COLOURS[cls]
        out.append(
            f'<rect x="{x}" y="{y - 10}" width="14" height="14" rx="3" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{x + 20}" y="{y + 1}" font-size="11.5" fill="#5f6368">{label}</text>'
        )
        x += 36 + 6.3 * len(label)
    out.append(
        f'<path d="M{x},{y - 3} L{x + 30},{y - 3}" stroke="{PATH_COLOUR}" stroke-width="3.5" '
        f'marker-end="url(#arrow-path)"/>'
        f'<text x="{x + 40}" y="{y + 1}" font-size="11.5" fill="#5f6368">'
        f"{LEGEND_PATH}</text>"
    )
    return "".join(out)
