"""One decision mechanism for every surface: the CLI records who, when, where too,
and the report and the PR show every decision."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

from tests.unit.test_dashboard_access import paused
from typer.testing import CliRunner

from rootloop.cli.main import app
from rootloop.context import ContextStore
from rootloop.report.html import render_html
from rootloop.report.model import RunReport, TopologyView
from rootloop.report.pr import render_pr_body


def test_cli_approve_goes_through_the_same_decision(tmp_path: Path) -> None:
    contexts = ContextStore(tmp_path)
    paused(contexts, "run-1")
    result = CliRunner().invoke(
        app, ["approve", "run-1", "--gate", "schema", "--no-resume", "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    [d] = contexts.load("run-1").decisions
    assert (d.via, d.who, d.origin) == ("cli", getpass.getuser(), socket.gethostname())
    again = CliRunner().invoke(
        app, ["approve", "run-1", "--gate", "schema", "--no-resume", "--state-dir", str(tmp_path)]
    )
    assert again.exit_code != 0 and "already approved" in str(again.exception)  # a UserError
    assert len(contexts.load("run-1").decisions) == 1


def test_the_pr_and_the_report_show_who_decided(tmp_path: Path) -> None:
    from rootloop.approvals import decide

    contexts = ContextStore(tmp_path)
    paused(contexts, "run-1")
    ctx = decide(
        contexts,
        "run-1",
        "schema",
        "denied",
        who="bob",
        via="slack",
        origin="slack team x",
        reason="not | during the sale",
    )
    report = RunReport(
        service=ctx.service,
        run_id=ctx.run_id,
        environment=ctx.environment,
        status=ctx.status,
        started_at=ctx.started_at,
        topology=TopologyView(service=ctx.service),
        context=ctx,
    )
    body = render_pr_body(report)
    assert "### Human decisions" in body
    assert "| schema | **denied** |" in body and "| bob |" in body
    assert "slack (slack team x)" in body and "not \\| during the sale" in body
    html = render_html(report)
    assert "Human decisions" in html and "bob" in html and "slack team x" in html
