"""The self-contained HTML report and its SVG graph."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from rootloop.models import Evidence, Finding, Status
from rootloop.report.html import render_html, write_html
from rootloop.report.model import build_report
from rootloop.report.svg import W, render_svg
from rootloop_lab.report_sample import (
    sample_context,
    sample_findings,
    sample_report,
    sample_topology,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_report_is_self_contained(tmp_path: Path) -> None:
    path = write_html(sample_report(), tmp_path / "deep" / "report.html")
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    lowered = html.lower()
    for banned in ("<script", "<link", "@import", "url(http", 'src="http', "src='http"):
        assert banned not in lowered, banned
    # the only URLs are the SVG namespace and the lab's loopback endpoints shown as text
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    assert all(u.startswith(("http://www.w3.org/", "http://127.0.0.1")) for u in urls), urls


def test_report_carries_the_pr_content() -> None:
    html = render_html(sample_report())
    for text in (
        "Fixed and verified",
        "What was wrong",
        "What a human must check",
        "Iterations",
        "Debug context (the seed's JSON)",
        "connection pool exhausted after batch fix",
        "99.83%",
        "122 ms",
        "Previous context (memory)",
        "pg_stat_activity by application",
    ):
        assert text in html, text
    assert html.count('<tr class="fail">') == 2
    assert html.count('<tr class="pass">') == 1


def test_graph_draws_every_node_and_highlights_the_path() -> None:
    report = sample_report()
    svg = render_svg(report.topology)
    names = re.findall(r'data-node="([^"]+)"', svg)
    assert sorted(names) == sorted(n.name for n in report.topology.nodes)
    assert svg.count('marker-end="url(#arrow-path)"') == 1 + 1  # the path edge + the legend
    assert svg.count('marker-end="url(#arrow)"') == len(report.topology.edges) - 1
    assert svg.count("ROOT CAUSE") == 1
    pg = svg[svg.index('data-node="postgresql"') :]
    assert "ROOT CAUSE" in pg[: pg.index("</g>")]
    for title in ("UPSTREAM", "SERVICE", "DOWNSTREAM"):
        assert f">{title}</text>" in svg


def test_graph_columns_run_left_to_right() -> None:
    svg = render_svg(sample_report().topology)

    def x_of(name: str) -> float:
        pattern = rf'data-node="{name}">.*?<rect x="([\d.]+)" y="[\d.]+" width="{W}"'
        m = re.search(pattern, svg, re.S)
        assert m is not None
        return float(m.group(1))

    assert x_of("frontend-app") < x_of("api-gateway") < x_of("payments-api")
    assert x_of("payments-api") < x_of("postgresql") == x_of("redis") < x_of("smtp-relay")


def test_secrets_never_reach_the_html() -> None:
    topo = sample_topology()
    topo.redactor.add("tok-9f8e7d6c5b4a")
    findings = [
        *sample_findings(),
        Finding(
            node="redis",
            skill="redis",
            status=Status.CRITICAL,
            summary="AUTH tok-9f8e7d6c5b4a refused",
            evidence=[Evidence(title="url", text="redis://:hunter2pass@127.0.0.1:6379/0")],
        ),
    ]
    html = render_html(build_report(sample_context(), topo, findings))
    assert "tok-9f8e7d6c5b4a" not in html
    assert "hunter2pass" not in html
    assert "AUTH *** refused" in html


def test_ui_screenshot_is_embedded(tmp_path: Path) -> None:
    shot = tmp_path / "ui.png"
    shot.write_bytes(PNG)
    report = sample_report()
    report.ui_test.screenshot = str(shot)
    html = render_html(report)
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in html
    report.ui_test.screenshot = str(tmp_path / "missing.png")
    assert "<img" not in render_html(report)


def test_escalated_report_explains_the_stop() -> None:
    html = render_html(sample_report("escalated"))
    assert "Escalated: no verified fix" in html
    assert "Why it stopped" in html
    assert "iteration budget spent (3 of 3)" in html
    assert "p95 2140 ms is above 800 ms" in html
