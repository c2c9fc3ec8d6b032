"""The run's report: PR body (Markdown + Mermaid), self-contained HTML, live terminal view.

The loop calls ``build_report`` once at the end of a run and hands the result to
``render_pr_body`` / ``pr_title`` (the forge) and ``write_html`` (the state
directory); ``TerminalView`` is an event sink it adds to its fan-out at start.
"""

from rootloop.report.html import render_html, write_html
from rootloop.report.model import RunReport, TopologyView, build_report, topology_view
from rootloop.report.pr import pr_title, render_pr_body
from rootloop.report.terminal import TerminalView

__all__ = [
    "RunReport",
    "TerminalView",
    "TopologyView",
    "build_report",
    "pr_title",
    "render_html",
    "render_pr_body",
    "topology_view",
    "write_html",
]
