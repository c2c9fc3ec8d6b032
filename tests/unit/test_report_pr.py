"""The report model and the PR body rendered from it."""

from __future__ import annotations

import json
import re

from rootloop.actions.types import RunMigration
from rootloop.context import HistoryEntry, PendingGate
from rootloop.models import Diagnosis, Evidence, Finding, Status
from rootloop.report.mermaid import escape_label, render_mermaid
from rootloop.report.model import build_report, topology_view
from rootloop.report.pr import BODY_LIMIT, pr_title, render_pr_body
from rootloop_lab.report_sample import (
    sample_context,
    sample_findings,
    sample_report,
    sample_topology,
)


def test_fixed_run_body_has_every_section() -> None:
    body = render_pr_body(sample_report())
    for heading in (
        "### What was wrong",
        "### Topology",
        "### Evidence",
        "### Iterations",
        "### Verification — passed",
        "### Load test — passed",
        "### UI test — passed",
        "### Previous context (memory)",
        "### What a human must check",
    ):
        assert heading in body, heading
    assert "### Why it stopped" not in body
    assert "the root cause is **postgresql**, 1 hop away (payments-api → postgresql)" in body
    assert "Fixed in iteration 3 by **code fix - bound the pg connection pool to 20**" in body
    # the history table: header, separator, three rows
    table = [ln for ln in body.splitlines() if re.match(r"^\| \d \| ", ln)]
    assert len(table) == 3
    assert table[1].startswith("| 2 | memory leak in batch processor |")
    assert "`a3f9c12`" in table[1] and "| pass |" in table[1]
    # load-test figures against thresholds
    assert "| success ratio | 99.83% (599/600) | ≥ 99.00% |" in body
    assert "| p95 | 122 ms | ≤ 800 ms |" in body
    assert body.count("- [ ] ") >= 3
    assert "never merges" in body
    assert len(body) < BODY_LIMIT


def test_seed_debug_context_is_embedded_as_json() -> None:
    body = render_pr_body(sample_report())
    m = re.search(r"<summary>Debug context.*?```json\n(.*?)\n```", body, re.S)
    assert m is not None
    seed = json.loads(m.group(1))
    assert seed["service"] == "payments-api"
    assert seed["iteration"] == 3
    assert [h["iteration"] for h in seed["history"]] == [1, 2, 3]
    assert seed["history"][1]["commit"] == "a3f9c12e41"
    assert set(seed["history"][0]) == {"iteration", "diagnosis", "action", "result"}


def test_mermaid_highlights_the_root_cause_path() -> None:
    report = sample_report()
    text = render_mermaid(report.topology)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    ids = {
        re.search(r"<b>(.*?)</b>", ln).group(1): ln.split("[")[0].split("(")[0].strip()
        for ln in lines
        if "<b>" in ln
    }
    pg, api = ids["postgresql"], ids["payments-api"]
    links = [ln.strip() for ln in lines if "-->" in ln or "==>" in ln]
    assert f"{api} ==> {pg}" in links
    assert sum("==>" in ln for ln in links) == 1
    idx = links.index(f"{api} ==> {pg}")
    assert f"linkStyle {idx} stroke:#d93025" in text
    assert f"class {pg} rootcause" in text
    assert re.search(rf"^\s*{pg}\[.*root cause.*\]:::critical$", text, re.M)
    assert re.search(rf"^\s*{ids['redis']}\[.*\]:::ok$", text, re.M)
    assert re.search(rf"^\s*{ids['smtp-relay']}\[.*\]:::unchecked$", text, re.M)


def test_mermaid_labels_are_escaped() -> None:
    raw = 'pool "exhausted" <script>|[x]{y}`'
    out = escape_label(raw)
    assert not any(ch in out for ch in '"<>|[]{}`')
    assert "#quot;exhausted#quot;" in out
    view = topology_view(
        sample_topology(),
        [
            Finding(node="redis", skill="redis", status=Status.DEGRADED, summary=raw),
        ],
        None,
    )
    text = render_mermaid(view, summary_chars=80)
    assert "<script>" not in text and '"exhausted"' not in text
    assert "#lt;script#gt;" in text


def test_escalated_run_says_why_and_what_was_tried() -> None:
    report = sample_report("escalated")
    body = render_pr_body(report)
    assert "🛑 escalated" in body
    assert "### Why it stopped" in body
    assert "**escalated**: iteration budget spent (3 of 3)" in body
    assert (
        "- iteration 1: infra fix - set ECS task memory to 2048 → same fault remains: still "
        "OOMKilled" in body
    )
    assert "Fixed in iteration" not in body
    assert "### Load test — failed" in body
    assert "- p95 2140 ms is above 800 ms" in body
    assert "rootloop resume 20261127-091204-7c1e" in body
    assert "needs a human" in pr_title(report)
    assert pr_title(sample_report()).startswith("rootloop: fix connection-exhaustion in postgresql")


def test_secrets_in_findings_never_reach_the_body() -> None:
    topo = sample_topology()
    topo.redactor.add("tok-9f8e7d6c5b4a")  # registered from ${API_TOKEN} while loading
    findings = sample_findings()
    findings.append(
        Finding(
            node="redis",
            skill="redis",
            status=Status.CRITICAL,
            summary="AUTH failed with token tok-9f8e7d6c5b4a",
            evidence=[
                Evidence(
                    kind="config",
                    title="dsn",
                    text="DATABASE_URL=postgresql://app:hunter2pass@db:5432/pay\n"
                    "password=Sup3rS3cret!",
                )
            ],
        )
    )
    report = build_report(sample_context(), topo, findings)
    body = render_pr_body(report)
    for secret in ("tok-9f8e7d6c5b4a", "hunter2pass", "Sup3rS3cret!"):
        assert secret not in body
        assert secret not in report.model_dump_json()
    assert "postgresql://app:***@db:5432/pay" in body


def test_huge_evidence_is_trimmed_under_the_limit() -> None:
    findings = sample_findings()
    big = "\n".join(f"line {i} ERROR something failed " + "x" * 80 for i in range(3000))
    findings[6].evidence.append(Evidence(kind="log", title="everything", text=big))
    findings[4].evidence.append(Evidence(kind="log", title="more", text=big))
    report = build_report(sample_context(), sample_topology(), findings)
    body = render_pr_body(report)
    assert len(body) <= BODY_LIMIT
    assert "Evidence trimmed to" in body
    assert "more characters trimmed" in body
    assert body.count("```") % 2 == 0
    assert "### What a human must check" in body  # nothing after the evidence was lost
    tiny = render_pr_body(report, limit=3000)
    assert len(tiny) <= 3000
    assert "Trimmed" in tiny


def test_fence_survives_backticks_in_evidence() -> None:
    findings = sample_findings()
    findings[6].evidence = [Evidence(title="md", text="```\nnot the end\n```")]
    body = render_pr_body(build_report(sample_context(), sample_topology(), findings))
    assert "````\n```\nnot the end\n```\n````" in body


def test_human_checks_name_schema_changes_and_pending_gates() -> None:
    ctx = sample_context("paused")
    mig = RunMigration(target="postgresql", name="0042_add_index", sql="CREATE INDEX i ON t(x)")
    ctx.history.append(
        HistoryEntry(
            iteration=4,
            diagnosis="slow query",
            action=mig.describe(),
            action_detail=mig,
            phase="awaiting-approval",
        )
    )
    ctx.pending_gate = PendingGate(gate="schema", reason="migration 0042_add_index", iteration=4)
    report = build_report(ctx, sample_topology(), sample_findings())
    joined = "\n".join(report.human_checks)
    assert "Database schema change (data fix - run migration 0042_add_index)" in joined
    assert f"rootloop approve {ctx.run_id} --gate schema" in joined
    assert "No database schema change" not in joined
    body = render_pr_body(report)
    assert "⏸️ paused for approval" in body


def test_production_map_says_nothing_was_changed() -> None:
    topo = sample_topology()
    topo.environment = "production"
    ctx = sample_context("refused")
    ctx.environment = "production"
    ctx.history = ctx.history[:1]
    report = build_report(ctx, topo, sample_findings())
    assert any("marked production" in c for c in report.human_checks)
    assert "⛔ refused to act" in render_pr_body(report)


def test_topology_view_roles_layers_and_path() -> None:
    view = sample_report().topology
    roles = {n.name: n.role for n in view.nodes}
    assert roles["payments-api"] == "service"
    assert roles["frontend-app"] == roles["api-gateway"] == "upstream"
    assert roles["smtp-relay"] == roles["postgresql"] == "downstream"
    layers = view.layers()
    assert layers["frontend-app"] < layers["api-gateway"] < layers["payments-api"]
    assert layers["payments-api"] < layers["postgresql"] < layers["smtp-relay"] or (
        layers["notification-svc"] < layers["smtp-relay"]
    )
    assert view.node("postgresql").root_cause
    assert view.node("payments-api").status is Status.CRITICAL  # worst of its four checks
    assert view.node("smtp-relay").status is None


def test_path_through_a_shared_dependency_and_check_names() -> None:
    topo = sample_topology()
    topo.graph.add_edge("lambda-worker", "postgresql")
    # a connection hog two hops away; the path is named by check node, walks an edge backwards
    diag = Diagnosis(
        root_cause="lambda-worker",
        category="connection-exhaustion",
        summary="worker leaks connections",
        confidence=0.8,
        path=["payments-api/logs", "postgresql", "lambda-worker"],
    )
    view = topology_view(topo, sample_findings(), diag)
    assert view.path == ["payments-api", "postgresql", "lambda-worker"]
    on = {(e.source, e.target) for e in view.edges if e.on_path}
    assert on == {("payments-api", "postgresql"), ("lambda-worker", "postgresql")}
    # no path given: the shortest one from the service is used
    diag2 = diag.model_copy(update={"path": []})
    assert topology_view(topo, [], diag2).path == ["payments-api", "lambda-worker"]
